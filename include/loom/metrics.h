// include/loom/metrics.h
//
// Metrics from user code, exported in Prometheus' format on the /metrics of
// the raylet of the node where the code runs (docs/observability.md), as
// loom.util.metrics does from Python. Define them anywhere (before
// loom::Init too); each process reports its changes about once a second.
// Names are exported as given (names under loom_ are Loom's own); a bad
// name, label or value throws loom::Error.
//
//   loom::metrics::Counter requests("requests", "Requests served", {"route"});
//   requests.Inc(1, {{"route", "/predict"}});
//   loom::metrics::Gauge queue("queue_depth", "Requests waiting");
//   queue.Set(12);
//   loom::metrics::Histogram latency("latency_s", "Request latency",
//                                    {0.01, 0.1, 1}, {"route"});
//   latency.Observe(0.042, {{"route", "/predict"}});
#ifndef LOOM_METRICS_H_
#define LOOM_METRICS_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace loom::metrics {

using Tags = std::map<std::string, std::string>;

// What the three kinds share: a name, its label names, default tags.
class Metric {
 public:
  // Tags used where a call does not give them.
  void SetDefaultTags(Tags tags) { defaults_ = std::move(tags); }

 protected:
  Metric(const std::string& name, const std::string& description, int kind,
         const std::vector<double>& boundaries,
         const std::vector<std::string>& tag_keys);
  void Record(double value, const Tags& tags) const;

 private:
  int id_ = -1;
  Tags defaults_;
};

// Only goes up.
class Counter : public Metric {
 public:
  Counter(const std::string& name, const std::string& description = "",
          const std::vector<std::string>& tag_keys = {});
  // value >= 0.
  void Inc(double value = 1, const Tags& tags = {}) const {
    Record(value, tags);
  }
};

// The last value set.
class Gauge : public Metric {
 public:
  Gauge(const std::string& name, const std::string& description = "",
        const std::vector<std::string>& tag_keys = {});
  void Set(double value, const Tags& tags = {}) const { Record(value, tags); }
};

// Observations counted in buckets with these upper bounds (increasing).
class Histogram : public Metric {
 public:
  Histogram(const std::string& name, const std::string& description,
            const std::vector<double>& boundaries,
            const std::vector<std::string>& tag_keys = {});
  void Observe(double value, const Tags& tags = {}) const {
    Record(value, tags);
  }
};

}  // namespace loom::metrics

#endif  // LOOM_METRICS_H_
