// src/common/work_queue.h
//
// WorkQueue: a fixed number of threads running posted work in order of
// posting, for blocking work that must not run on an event loop and must
// not get a thread each (object pulls, frees). Destroying it runs what is
// still queued, then joins: work that should not start any more checks a
// flag of its owner's.
//
//   WorkQueue pulls("pull", 8);
//   pulls.Post([] { ... });
#ifndef LOOM_COMMON_WORK_QUEUE_H_
#define LOOM_COMMON_WORK_QUEUE_H_

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace loom {

// Thread-safe.
class WorkQueue {
 public:
  WorkQueue(std::string name, int threads);
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void Post(std::function<void()> fn);
  // Queued, not yet started.
  size_t queued() const;

 private:
  void Run();

  const std::string name_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> work_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace loom

#endif  // LOOM_COMMON_WORK_QUEUE_H_
