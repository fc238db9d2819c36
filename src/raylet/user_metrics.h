// src/raylet/user_metrics.h
//
// UserMetrics: the metrics user code defines (loom.util.metrics in Python,
// include/loom/metrics.h in C++), gathered from the node's workers and
// exported on the raylet's /metrics. Workers report changes with their task
// counts (ReportTaskStatsRequest.metrics): counters add up over workers,
// a gauge keeps the last value set, histograms add up bucket by bucket.
// Names are exported as the user gave them; "loom_" is Loom's own.
//
//   UserMetrics user({.max_series = 10000});
//   absl::Status s = user.Add(point);   // from a worker's report
//   auto source = metrics.AddSource([&] { return user.Collect(); });
#ifndef LOOM_RAYLET_USER_METRICS_H_
#define LOOM_RAYLET_USER_METRICS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "proto/raylet.pb.h"
#include "src/common/metrics.h"

namespace loom::raylet {

// Thread-safe.
class UserMetrics {
 public:
  struct Options {
    size_t max_series = 10000;  // over all metrics
  };
  explicit UserMetrics(Options options) : options_(options) {}

  // InvalidArgument for a malformed point or one whose kind or boundaries
  // differ from the metric's first; ResourceExhausted past max_series.
  absl::Status Add(const rpc::MetricPoint& point);
  MetricFamilies Collect() const;

 private:
  using LabelSet = MetricLabelSet;
  using Series = MetricSeries;
  struct Metric {
    std::string help;
    rpc::MetricPoint::Kind kind;
    std::vector<double> boundaries;
    std::map<LabelSet, Series> series;
  };

  const Options options_;
  mutable absl::Mutex mu_;
  std::map<std::string, Metric> metrics_ ABSL_GUARDED_BY(mu_);
  size_t series_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace loom::raylet

#endif  // LOOM_RAYLET_USER_METRICS_H_
