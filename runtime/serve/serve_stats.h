// runtime/serve/serve_stats.h
//
// What a router saw of one deployment since it was last asked: the load now
// (queued, ongoing), answers by HTTP code, latency percentiles from submit
// to reply, and batch sizes. The controller sums these over routers to
// autoscale; `serve status` shows them.
//
//   LatencyWindow w;
//   w.Add(1.5);  w.Add(3.0);
//   double p95 = w.Percentile(0.95);
#ifndef LOOM_RUNTIME_SERVE_SERVE_STATS_H_
#define LOOM_RUNTIME_SERVE_SERVE_STATS_H_

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace loom::serve {

// Not thread-safe. Keeps at most kMax samples (every n-th past that, so a
// long window still spans its whole time).
class LatencyWindow {
 public:
  static constexpr size_t kMax = 4096;
  void Add(double ms) {
    ++count_;
    if (samples_.size() < kMax) {
      samples_.push_back(ms);
    } else {
      samples_[count_ % kMax] = ms;
    }
  }
  int64_t count() const { return count_; }
  // 0 without samples.
  double Percentile(double q) const {
    if (samples_.empty()) return 0;
    std::vector<double> s = samples_;
    size_t k = std::min(s.size() - 1, static_cast<size_t>(q * s.size()));
    std::nth_element(s.begin(), s.begin() + k, s.end());
    return s[k];
  }
  void Clear() {
    samples_.clear();
    count_ = 0;
  }

 private:
  std::vector<double> samples_;
  int64_t count_ = 0;
};

struct DeploymentStats {
  std::string name;
  int replicas = 0;  // listed and alive
  int queued = 0;
  int ongoing = 0;
  std::map<int, int64_t> codes;        // HTTP code -> answers
  std::map<int, int64_t> batch_sizes;  // size -> batches sent
  int64_t requests = 0;                // answered
  double p50_ms = 0, p95_ms = 0, p99_ms = 0;
};

// The HTTP status a router outcome answers with.
inline int HttpCodeOf(int reply_code) {
  constexpr int kCodes[] = {200, 404, 503, 504, 502, 500};
  return reply_code >= 0 && reply_code < 6 ? kCodes[reply_code] : 500;
}

}  // namespace loom::serve

#endif  // LOOM_RUNTIME_SERVE_SERVE_STATS_H_
