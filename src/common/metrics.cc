#include "src/common/metrics.h"

#include <cmath>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace loom {
namespace {

// [a-zA-Z_:][a-zA-Z0-9_:]* for names; labels the same without ':'.
bool PrometheusName(const std::string& s, bool colon) {
  if (s.empty() || absl::ascii_isdigit(s[0])) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '_' && !(colon && c == ':')) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::Status CheckMetricDefinition(const std::string& name,
                                   const std::vector<std::string>& label_names,
                                   const std::vector<double>& boundaries,
                                   bool own) {
  if (!PrometheusName(name, true)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric name '", name,
        "' must match [a-zA-Z_:][a-zA-Z0-9_:]* (Prometheus' rule)"));
  }
  if (absl::StartsWith(name, "loom_") &&
      !(own && absl::StartsWith(name, kWorkerOwnPrefix))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric name '", name, "': names under loom_ are Loom's own"));
  }
  for (const std::string& label : label_names) {
    if (!PrometheusName(label, false) || absl::StartsWith(label, "__")) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric ", name, ": label name '", label,
                       "' must match [a-zA-Z_][a-zA-Z0-9_]* and not start "
                       "with __"));
    }
    if (label == "le" || label == "quantile") {
      return absl::InvalidArgumentError(absl::StrCat(
          "metric ", name, ": label name '", label, "' is reserved"));
    }
  }
  for (size_t i = 0; i < boundaries.size(); ++i) {
    if (!std::isfinite(boundaries[i]) ||
        (i > 0 && boundaries[i] <= boundaries[i - 1])) {
      return absl::InvalidArgumentError(
          absl::StrCat("histogram ", name,
                       ": boundaries must be finite and strictly increasing"));
    }
  }
  return absl::OkStatus();
}

class MetricSource::Collector : public prometheus::Collectable {
 public:
  explicit Collector(Fn fn) : fn_(std::move(fn)) {}
  MetricFamilies Collect() const override {
    absl::MutexLock lock(&mu_);
    return fn_ ? fn_() : MetricFamilies{};
  }
  void Detach() {
    absl::MutexLock lock(&mu_);
    fn_ = nullptr;
  }

 private:
  mutable absl::Mutex mu_;
  Fn fn_ ABSL_GUARDED_BY(mu_);
};

MetricSource::MetricSource(std::shared_ptr<Collector> collector)
    : collector_(std::move(collector)) {}
MetricSource::~MetricSource() { collector_->Detach(); }

std::unique_ptr<MetricSource> Metrics::AddSource(MetricSource::Fn collect) {
  auto collector =
      std::make_shared<MetricSource::Collector>(std::move(collect));
  absl::MutexLock lock(&mu_);
  sources_.push_back(collector);
  if (exposer_) exposer_->RegisterCollectable(collector);
  return std::unique_ptr<MetricSource>(new MetricSource(collector));
}

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {}
Metrics::~Metrics() = default;

prometheus::Counter& Metrics::Counter(const std::string& name,
                                      const std::string& help,
                                      const Labels& labels) {
  return prometheus::BuildCounter()
      .Name(name)
      .Help(help)
      .Register(*registry_)
      .Add(labels);
}

prometheus::Gauge& Metrics::Gauge(const std::string& name,
                                  const std::string& help,
                                  const Labels& labels) {
  return prometheus::BuildGauge()
      .Name(name)
      .Help(help)
      .Register(*registry_)
      .Add(labels);
}

prometheus::Histogram& Metrics::Histogram(const std::string& name,
                                          const std::string& help,
                                          const std::vector<double>& buckets,
                                          const Labels& labels) {
  return prometheus::BuildHistogram()
      .Name(name)
      .Help(help)
      .Register(*registry_)
      .Add(labels, prometheus::Histogram::BucketBoundaries(buckets));
}

absl::StatusOr<int> Metrics::Serve(const std::string& host, int port) {
  absl::MutexLock lock(&mu_);
  try {
    // civetweb gives each connection a thread until it closes or sends
    // nothing for request_timeout_ms: a few threads and a short timeout, so
    // that an idle or slow client neither blocks the endpoint nor holds a
    // thread for long.
    exposer_ = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
        "listening_ports", absl::StrCat(host, ":", port), "num_threads",
        std::to_string(kServingThreads), "request_timeout_ms",
        std::to_string(kRequestTimeoutMs)});
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics endpoint on ", host, ":", port, ": ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  for (const auto& source : sources_) exposer_->RegisterCollectable(source);
  auto ports = exposer_->GetListeningPorts();
  if (ports.empty()) return absl::UnavailableError("metrics: no port bound");
  return ports.front();
}

void GaugeSnapshot::Set(const std::string& name, const std::string& help,
                        const std::vector<Sample>& samples) {
  prometheus::MetricFamily family{
      name, help, prometheus::MetricType::Gauge, {}};
  family.metric.reserve(samples.size());
  for (const Sample& s : samples) {
    prometheus::ClientMetric m;
    for (const auto& [k, v] : s.labels) m.label.push_back({k, v});
    m.gauge.value = s.value;
    family.metric.push_back(std::move(m));
  }
  absl::MutexLock lock(&mu_);
  families_[name] = std::move(family);
}

MetricFamilies GaugeSnapshot::Collect() const {
  absl::MutexLock lock(&mu_);
  MetricFamilies out;
  out.reserve(families_.size());
  for (const auto& [name, family] : families_) out.push_back(family);
  return out;
}

prometheus::ClientMetric::Label MetricLabel(std::string name,
                                            std::string value) {
  return {std::move(name), std::move(value)};
}

prometheus::ClientMetric HistogramSample(
    std::vector<prometheus::ClientMetric::Label> labels,
    const std::vector<double>& bounds, const std::vector<uint64_t>& counts,
    double sum) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds.size() && i < counts.size(); ++i) {
    cumulative += counts[i];
    m.histogram.bucket.push_back(
        {cumulative, i < bounds.size()
                         ? bounds[i]
                         : std::numeric_limits<double>::infinity()});
  }
  m.histogram.sample_count = cumulative;
  m.histogram.sample_sum = sum;
  return m;
}

}  // namespace loom
