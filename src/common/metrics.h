// src/common/metrics.h
//
// Metrics: one Prometheus registry per process, passed into components, and
// the /metrics endpoint that serves it. Every name starts with loom_.
//
//   Metrics metrics;
//   auto& granted = metrics.Counter("loom_leases_granted_total", "...");
//   granted.Increment();
//   int port = *metrics.Serve("127.0.0.1", 0);  // GET /metrics
#ifndef LOOM_COMMON_METRICS_H_
#define LOOM_COMMON_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace loom {

// Thread-safe (prometheus-cpp metrics are).
class Metrics {
 public:
  using Labels = std::map<std::string, std::string>;

  Metrics();
  ~Metrics();

  prometheus::Counter& Counter(const std::string& name, const std::string& help,
                               const Labels& labels = {});
  prometheus::Gauge& Gauge(const std::string& name, const std::string& help,
                           const Labels& labels = {});
  prometheus::Histogram& Histogram(const std::string& name,
                                   const std::string& help,
                                   const std::vector<double>& buckets,
                                   const Labels& labels = {});

  // /metrics serves this many connections at once, and drops one that
  // sends no request for this long.
  static constexpr int kServingThreads = 4;
  static constexpr int kRequestTimeoutMs = 2000;

  // Starts serving /metrics; returns the bound port.
  absl::StatusOr<int> Serve(const std::string& host, int port);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace loom

#endif  // LOOM_COMMON_METRICS_H_
