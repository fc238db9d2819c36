// scheduler/fixed_point.h
//
// FixedPoint: a resource quantity in units of 1/10000, so that fractions add
// up exactly (0.1 + 0.2 == 0.3) and never drift after many acquire/release.
//
//   FixedPoint a = FixedPoint::FromDouble(0.1), b =
//   FixedPoint::FromDouble(0.2); assert(a + b == FixedPoint::FromDouble(0.3));
#ifndef LOOM_SCHEDULER_FIXED_POINT_H_
#define LOOM_SCHEDULER_FIXED_POINT_H_

#include <cmath>
#include <cstdint>
#include <string>

namespace loom {

class FixedPoint {
 public:
  static constexpr int64_t kScale = 10000;

  constexpr FixedPoint() = default;
  static constexpr FixedPoint FromRaw(int64_t raw) { return FixedPoint(raw); }
  static FixedPoint FromDouble(double v) {
    return FixedPoint(static_cast<int64_t>(std::llround(v * kScale)));
  }
  static constexpr FixedPoint FromInt(int64_t v) {
    return FixedPoint(v * kScale);
  }

  constexpr int64_t raw() const { return raw_; }
  double ToDouble() const { return static_cast<double>(raw_) / kScale; }
  bool IsWhole() const { return raw_ % kScale == 0; }
  std::string ToString() const;

  FixedPoint operator+(FixedPoint o) const { return FixedPoint(raw_ + o.raw_); }
  FixedPoint operator-(FixedPoint o) const { return FixedPoint(raw_ - o.raw_); }
  FixedPoint& operator+=(FixedPoint o) {
    raw_ += o.raw_;
    return *this;
  }
  FixedPoint& operator-=(FixedPoint o) {
    raw_ -= o.raw_;
    return *this;
  }
  bool operator==(FixedPoint o) const { return raw_ == o.raw_; }
  bool operator!=(FixedPoint o) const { return raw_ != o.raw_; }
  bool operator<(FixedPoint o) const { return raw_ < o.raw_; }
  bool operator<=(FixedPoint o) const { return raw_ <= o.raw_; }
  bool operator>(FixedPoint o) const { return raw_ > o.raw_; }
  bool operator>=(FixedPoint o) const { return raw_ >= o.raw_; }

 private:
  constexpr explicit FixedPoint(int64_t raw) : raw_(raw) {}
  int64_t raw_ = 0;
};

}  // namespace loom

#endif  // LOOM_SCHEDULER_FIXED_POINT_H_
