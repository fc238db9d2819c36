// src/common/metrics.h
//
// Metrics: one Prometheus registry per process, passed into components, and
// the /metrics endpoint that serves it. Every name starts with loom_.
//
//   Metrics metrics;
//   auto& granted = metrics.Counter("loom_leases_granted_total", "...");
//   granted.Increment();
//   int port = *metrics.Serve("127.0.0.1", 0);  // GET /metrics
//
// State that an event loop owns is exported through a GaugeSnapshot the
// loop refreshes, or through a source called at each scrape:
//
//   auto source = metrics.AddSource([&] { return store.Collect(); });
#ifndef LOOM_COMMON_METRICS_H_
#define LOOM_COMMON_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace loom {

using MetricFamilies = std::vector<prometheus::MetricFamily>;

// A function called at each scrape, on the endpoint's threads, until this
// handle is destroyed; the destructor waits for a call in progress.
class MetricSource {
 public:
  using Fn = std::function<MetricFamilies()>;
  ~MetricSource();
  MetricSource(const MetricSource&) = delete;
  MetricSource& operator=(const MetricSource&) = delete;

 private:
  friend class Metrics;
  class Collector;
  explicit MetricSource(std::shared_ptr<Collector> collector);
  std::shared_ptr<Collector> collector_;
};

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

  // Adds `collect`'s families to every scrape (see MetricSource).
  std::unique_ptr<MetricSource> AddSource(MetricSource::Fn collect);

  // /metrics serves this many connections at once, and drops one that
  // sends no request for this long.
  static constexpr int kServingThreads = 4;
  static constexpr int kRequestTimeoutMs = 2000;

  // Starts serving /metrics; returns the bound port.
  absl::StatusOr<int> Serve(const std::string& host, int port);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  absl::Mutex mu_;
  std::vector<std::shared_ptr<prometheus::Collectable>> sources_
      ABSL_GUARDED_BY(mu_);
  std::unique_ptr<prometheus::Exposer> exposer_ ABSL_GUARDED_BY(mu_);
};

// Gauges whose samples are replaced all at once: an event loop publishes
// what it owns, a scrape reads the last set. Thread-safe.
//
//   GaugeSnapshot actors;
//   auto source = metrics.AddSource([&] { return actors.Collect(); });
//   actors.Set("loom_actors", "Actors by state", {{{{"state", "ALIVE"}}, 3}});
class GaugeSnapshot {
 public:
  struct Sample {
    Metrics::Labels labels;
    double value = 0;
  };
  void Set(const std::string& name, const std::string& help,
           const std::vector<Sample>& samples);
  MetricFamilies Collect() const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, prometheus::MetricFamily> families_
      ABSL_GUARDED_BY(mu_);
};

// A user metric's definition (loom.util.metrics), checked where it is
// made and where the raylet takes it:
// InvalidArgument naming what is wrong (the name or a label name not in
// Prometheus' form, a name under loom_, boundaries not increasing).
// Names under kWorkerOwnPrefix are Loom's own too, but reported by worker
// processes (loom.serve's routers and replicas): allowed with own = true.
inline constexpr char kWorkerOwnPrefix[] = "loom_serve_";
absl::Status CheckMetricDefinition(const std::string& name,
                                   const std::vector<std::string>& label_names,
                                   const std::vector<double>& boundaries,
                                   bool own = false);

// One series of a user metric (a metric's samples for one set of label
// values), as processes and raylets keep it: a counter's or gauge's value,
// or a histogram's count per bucket (the last above every boundary) and sum.
using MetricLabelSet = std::vector<std::pair<std::string, std::string>>;
struct MetricSeries {
  double value = 0;
  std::vector<uint64_t> counts;
  double sum = 0;
};

// Builders for sources.
prometheus::ClientMetric::Label MetricLabel(std::string name,
                                            std::string value);
// A histogram sample from per-bucket counts: counts[i] observations at most
// bounds[i], the last (counts.size() == bounds.size() + 1) above them all.
prometheus::ClientMetric HistogramSample(
    std::vector<prometheus::ClientMetric::Label> labels,
    const std::vector<double>& bounds, const std::vector<uint64_t>& counts,
    double sum);

}  // namespace loom

#endif  // LOOM_COMMON_METRICS_H_
