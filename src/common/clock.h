// src/common/clock.h
//
// Clock: where components read the time, so that tests can move it.
//
//   ManualClock clock;
//   policy.Tick(clock.Now());
//   clock.Advance(absl::Seconds(5));
#ifndef LOOM_COMMON_CLOCK_H_
#define LOOM_COMMON_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace loom {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  static Clock* Real();
};

class RealClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

inline Clock* Clock::Real() {
  static RealClock clock;
  return &clock;
}

// Thread-safe. Starts at the Unix epoch and moves only when told.
class ManualClock : public Clock {
 public:
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::UnixEpoch();
};

}  // namespace loom

#endif  // LOOM_COMMON_CLOCK_H_
