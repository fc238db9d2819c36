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
  auto ports = exposer_->GetListeningPorts();
  if (ports.empty()) return absl::UnavailableError("metrics: no port bound");
  return ports.front();
}

}  // namespace loom
