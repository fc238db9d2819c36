#include "src/common/metrics.h"

#include "absl/strings/str_cat.h"

namespace loom {

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
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(
        absl::StrCat(host, ":", port), /*num_threads=*/1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics endpoint on ", host, ":", port, ": ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  auto ports = exposer_->GetListeningPorts();
  if (ports.empty()) return absl::UnavailableError("metrics: no port bound");
  return ports.front();
}

}  // namespace loom
