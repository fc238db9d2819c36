#include "src/raylet/user_metrics.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace loom::raylet {
absl::Status UserMetrics::Add(const rpc::MetricPoint& p) {
  std::vector<std::string> label_names;
  LabelSet labels(p.labels().begin(), p.labels().end());
  std::sort(labels.begin(), labels.end());
  for (const auto& [k, v] : labels) label_names.push_back(k);
  std::vector<double> bounds(p.boundaries().begin(), p.boundaries().end());
  if (auto s = CheckMetricDefinition(p.name(), label_names, bounds,
                                     /*own=*/true);
      !s.ok()) {
    return s;
  }
  bool histogram = p.kind() == rpc::MetricPoint::HISTOGRAM;
  if (!rpc::MetricPoint::Kind_IsValid(p.kind()) || !std::isfinite(p.value()) ||
      !std::isfinite(p.sum()) ||
      (p.kind() == rpc::MetricPoint::COUNTER && p.value() < 0) ||
      (histogram &&
       (bounds.empty() || p.bucket_counts_size() != p.boundaries_size() + 1))) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric ", p.name(), ": malformed point"));
  }
  absl::MutexLock lock(&mu_);
  auto [it, created] = metrics_.try_emplace(p.name());
  Metric& m = it->second;
  if (created) {
    m.help = p.help();
    m.kind = p.kind();
    m.boundaries = bounds;
  } else if (m.kind != p.kind() || m.boundaries != bounds) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric ", p.name(),
        " was defined with another kind or other boundaries elsewhere"));
  }
  auto series = m.series.find(labels);
  if (series == m.series.end()) {
    if (series_ >= options_.max_series) {
      if (m.series.empty()) metrics_.erase(it);
      return absl::ResourceExhaustedError(absl::StrCat(
          "more than ", options_.max_series,
          " user metric series on this node; ", p.name(), " not kept"));
    }
    ++series_;
    series = m.series.emplace(std::move(labels), Series{}).first;
    if (histogram) series->second.counts.resize(bounds.size() + 1);
  }
  Series& s = series->second;
  switch (p.kind()) {
    case rpc::MetricPoint::COUNTER:
      s.value += p.value();
      break;
    case rpc::MetricPoint::GAUGE:
      s.value = p.value();
      break;
    default:
      for (int i = 0; i < p.bucket_counts_size(); ++i) {
        s.counts[i] += p.bucket_counts(i);
      }
      s.sum += p.sum();
  }
  return absl::OkStatus();
}

MetricFamilies UserMetrics::Collect() const {
  absl::MutexLock lock(&mu_);
  MetricFamilies out;
  for (const auto& [name, m] : metrics_) {
    prometheus::MetricFamily f{
        name,
        m.help,
        m.kind == rpc::MetricPoint::COUNTER ? prometheus::MetricType::Counter
        : m.kind == rpc::MetricPoint::GAUGE ? prometheus::MetricType::Gauge
                                            : prometheus::MetricType::Histogram,
        {}};
    for (const auto& [labels, s] : m.series) {
      std::vector<prometheus::ClientMetric::Label> ls;
      for (const auto& [k, v] : labels) ls.push_back(MetricLabel(k, v));
      if (m.kind == rpc::MetricPoint::HISTOGRAM) {
        f.metric.push_back(
            HistogramSample(std::move(ls), m.boundaries, s.counts, s.sum));
        continue;
      }
      prometheus::ClientMetric c;
      c.label = std::move(ls);
      c.counter.value = s.value;
      c.gauge.value = s.value;
      f.metric.push_back(std::move(c));
    }
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace loom::raylet
