#include "src/common/event_loop.h"

#include <pthread.h>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace loom {
namespace {

// Debian builds Abseil without NDEBUG, so every Mutex::Lock also updates a
// process-wide lock-order graph (deadlock detection) under a global lock:
// a debugging aid that costs every lock on the fast path. Every Loom
// process runs an EventLoop, so this file turns it off for all of them.
const bool kNoDeadlockGraph = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();

}  // namespace

EventLoop::EventLoop(std::string name, Clock* clock)
    : name_(std::move(name)), clock_(clock) {}

EventLoop::~EventLoop() { Stop(); }

void EventLoop::Start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
    Run();
  });
}

void EventLoop::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable() && !IsLoopThread()) thread_.join();
}

void EventLoop::Post(Fn fn) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(fn));
}

void EventLoop::PostAfter(absl::Duration delay, Fn fn) {
  absl::Time due = clock_->Now() + delay;
  absl::MutexLock lock(&mu_);
  timers_.push(Timer{due, timer_seq_++, std::move(fn)});
  wakeup_ = true;
}

void EventLoop::PostLazy(absl::Duration delay, absl::Duration slack, Fn fn) {
  absl::Time due = clock_->Now() + delay;
  absl::MutexLock lock(&mu_);
  lazy_.push_back(LazyTimer{due, due + slack, std::move(fn)});
  wakeup_ = true;
}

void EventLoop::RunSync(Fn fn) {
  if (IsLoopThread()) return fn();  // waiting on ourselves would never end
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || !thread_.joinable()) {
      fn();  // no loop thread to run it: run it here
      return;
    }
  }
  absl::Notification done;
  Post([&] {
    fn();
    done.Notify();
  });
  done.WaitForNotification();
}

void EventLoop::Wakeup() {
  absl::MutexLock lock(&mu_);
  wakeup_ = true;
}

bool EventLoop::IsLoopThread() const {
  return std::this_thread::get_id() == thread_.get_id();
}

void EventLoop::Run() {
  std::vector<Fn> batch;
  std::vector<Fn> due;
  while (true) {
    batch.clear();
    due.clear();
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty() || wakeup_;
      };
      // Sleep until work arrives or the earliest timer falls due: an idle
      // loop does not wake. Under a ManualClock moved by a test the wait
      // is capped so that the move is noticed.
      absl::Duration wait = clock_ == Clock::Real() ? absl::InfiniteDuration()
                                                    : absl::Milliseconds(50);
      absl::Time now = clock_->Now();
      if (!timers_.empty()) wait = std::min(wait, timers_.top().due - now);
      for (const LazyTimer& t : lazy_) wait = std::min(wait, t.latest - now);
      if (wait > absl::ZeroDuration()) {
        mu_.AwaitWithTimeout(absl::Condition(&ready), wait);
      }
      if (stopping_) return;
      wakeup_ = false;
      batch.swap(queue_);
      now = clock_->Now();
      while (!timers_.empty() && timers_.top().due <= now) {
        due.push_back(std::move(const_cast<Timer&>(timers_.top()).fn));
        timers_.pop();
      }
      for (size_t i = 0; i < lazy_.size();) {
        if (lazy_[i].due > now) {
          ++i;
          continue;
        }
        due.push_back(std::move(lazy_[i].fn));
        lazy_[i] = std::move(lazy_.back());
        lazy_.pop_back();
      }
    }
    for (auto& fn : batch) fn();
    for (auto& fn : due) fn();
  }
}

}  // namespace loom
