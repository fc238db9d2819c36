// src/common/event_loop.h
//
// EventLoop: one thread that owns a component's state. Other threads (gRPC
// handlers, timers) hand it work with Post; PostAfter runs work once the
// injected clock reaches a deadline.
//
//   EventLoop loop("raylet");
//   loop.Start();
//   loop.Post([&] { scheduler.Dispatch(); });
//   loop.PostAfter(absl::Seconds(1), [&] { SendHeartbeat(); });
//   loop.PostLazy(absl::Milliseconds(100), absl::Seconds(1), [&] { Tidy(); });
//   loop.Stop();  // runs nothing more; joins the thread
#ifndef LOOM_COMMON_EVENT_LOOP_H_
#define LOOM_COMMON_EVENT_LOOP_H_

#include <functional>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "src/common/clock.h"

namespace loom {

// Thread-safe: Post and PostAfter may be called from any thread.
class EventLoop {
 public:
  using Fn = std::function<void()>;

  explicit EventLoop(std::string name, Clock* clock = Clock::Real());
  ~EventLoop();

  void Start();
  // Stops after the function now running; pending work is dropped.
  void Stop();

  void Post(Fn fn);
  void PostAfter(absl::Duration delay, Fn fn);
  // Runs fn once `delay` has passed, when the loop next wakes for other
  // work, and at the latest after delay + slack: housekeeping that rides on
  // other wakeups instead of waking an idle process on its own.
  void PostLazy(absl::Duration delay, absl::Duration slack, Fn fn);
  // Runs fn on the loop and waits for it; runs it on the caller's thread
  // when that is the loop's own, or when the loop is not running.
  void RunSync(Fn fn);

  // Re-checks timers now: for tests that move a ManualClock.
  void Wakeup();
  bool IsLoopThread() const;
  Clock* clock() const { return clock_; }

 private:
  struct Timer {
    absl::Time due;
    uint64_t seq;
    Fn fn;
    bool operator>(const Timer& o) const {
      return due != o.due ? due > o.due : seq > o.seq;
    }
  };
  void Run();

  const std::string name_;
  Clock* const clock_;
  mutable absl::Mutex mu_;
  std::vector<Fn> queue_ ABSL_GUARDED_BY(mu_);
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_
      ABSL_GUARDED_BY(mu_);
  struct LazyTimer {
    absl::Time due, latest;
    Fn fn;
  };
  std::vector<LazyTimer> lazy_ ABSL_GUARDED_BY(mu_);  // few: a linear scan
  uint64_t timer_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool wakeup_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace loom

#endif  // LOOM_COMMON_EVENT_LOOP_H_
