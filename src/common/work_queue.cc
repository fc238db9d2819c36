#include "src/common/work_queue.h"

#include <pthread.h>

namespace loom {

WorkQueue::WorkQueue(std::string name, int threads) : name_(std::move(name)) {
  for (int i = 0; i < std::max(1, threads); ++i) {
    threads_.emplace_back([this] {
      pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
      Run();
    });
  }
}

WorkQueue::~WorkQueue() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  for (auto& t : threads_) t.join();
}

void WorkQueue::Post(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  work_.push_back(std::move(fn));
}

size_t WorkQueue::queued() const {
  absl::MutexLock lock(&mu_);
  return work_.size();
}

void WorkQueue::Run() {
  while (true) {
    std::function<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stop_ || !work_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (work_.empty()) return;  // stopping, and nothing left
      fn = std::move(work_.front());
      work_.pop_front();
    }
    fn();
  }
}

}  // namespace loom
