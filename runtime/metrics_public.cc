// loom::metrics (include/loom/metrics.h) over runtime/metric_recorder.h.
#include "loom/errors.h"
#include "loom/metrics.h"
#include "runtime/metric_recorder.h"

namespace loom::metrics {

Metric::Metric(const std::string& name, const std::string& description,
               int kind, const std::vector<double>& boundaries,
               const std::vector<std::string>& tag_keys) {
  auto id = MetricRecorder::Global().Define(
      {name, description, static_cast<MetricRecorder::Kind>(kind), boundaries,
       tag_keys});
  if (!id.ok()) throw Error(std::string(id.status().message()));
  id_ = *id;
}

void Metric::Record(double value, const Tags& tags) const {
  const Tags* all = &tags;
  Tags merged;
  if (!defaults_.empty()) {
    merged = defaults_;
    for (const auto& [k, v] : tags) merged[k] = v;
    all = &merged;
  }
  auto s = MetricRecorder::Global().Record(id_, *all, value);
  if (!s.ok()) throw Error(std::string(s.message()));
}

Counter::Counter(const std::string& name, const std::string& description,
                 const std::vector<std::string>& tag_keys)
    : Metric(name, description, rpc::MetricPoint::COUNTER, {}, tag_keys) {}

Gauge::Gauge(const std::string& name, const std::string& description,
             const std::vector<std::string>& tag_keys)
    : Metric(name, description, rpc::MetricPoint::GAUGE, {}, tag_keys) {}

Histogram::Histogram(const std::string& name, const std::string& description,
                     const std::vector<double>& boundaries,
                     const std::vector<std::string>& tag_keys)
    : Metric(name, description, rpc::MetricPoint::HISTOGRAM, boundaries,
             tag_keys) {}

}  // namespace loom::metrics
