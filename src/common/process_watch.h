// src/common/process_watch.h
//
// ProcessWatch: says when processes end, without polling. One thread waits
// in epoll on a pidfd per watched process (Linux 5.3 and later), so that a
// node with thousands of workers neither wakes to look for the dead nor
// pays a waitpid per worker per tick. A process need not be a child.
//
//   ProcessWatch watch([&](pid_t pid) { loop.Post([=] { Reap(pid); }); });
//   if (!watch.Watch(pid)) { /* no pidfd here, or already gone: poll */ }
//   watch.Forget(pid);  // before the pid can be reused
#ifndef LOOM_COMMON_PROCESS_WATCH_H_
#define LOOM_COMMON_PROCESS_WATCH_H_

#include <sys/types.h>

#include <functional>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace loom {

// Thread-safe. on_exit runs on the watch thread, once per watched process
// that ends while watched; it must not call back into the watch.
class ProcessWatch {
 public:
  explicit ProcessWatch(std::function<void(pid_t)> on_exit);
  ~ProcessWatch();
  ProcessWatch(const ProcessWatch&) = delete;
  ProcessWatch& operator=(const ProcessWatch&) = delete;

  // False when the process cannot be watched: the kernel has no pidfd, the
  // process is gone already, or descriptors ran out. The caller then finds
  // out by polling.
  bool Watch(pid_t pid);
  void Forget(pid_t pid);

 private:
  void Run();

  const std::function<void(pid_t)> on_exit_;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;  // an eventfd: written once to end the thread
  absl::Mutex mu_;
  absl::flat_hash_map<pid_t, int> fds_ ABSL_GUARDED_BY(mu_);  // pid -> pidfd
  std::thread thread_;
};

}  // namespace loom

#endif  // LOOM_COMMON_PROCESS_WATCH_H_
