#include "src/raylet/node_metrics.h"

#include <spdlog/spdlog.h>

namespace loom::raylet {

NodeMetrics::NodeMetrics(Options options)
    : options_(std::move(options)),
      machine_(NodeStats::Options{.disk_path = options_.disk_path}),
      user_(UserMetrics::Options{.max_series = options_.max_user_series}),
      rejected_(options_.metrics->Counter(
          "loom_user_metrics_rejected_total",
          "User metric updates refused (malformed, conflicting, or past the "
          "node's series limit)")) {
  source_ = options_.metrics->AddSource([this] {
    MetricFamilies out = machine_.Collect();
    for (auto& f : gauges_.Collect()) out.push_back(std::move(f));
    for (auto& f : user_.Collect()) out.push_back(std::move(f));
    return out;
  });
}

// The source goes first: no scrape runs past this point.
NodeMetrics::~NodeMetrics() { source_.reset(); }

void NodeMetrics::PublishResources(const ResourceSet& total,
                                   const ResourceSet& available) {
  std::vector<GaugeSnapshot::Sample> samples;
  std::map<std::string, double> left = available.ToMap();
  for (const auto& [name, quantity] : total.ToMap()) {
    double free = left.count(name) ? std::max(0.0, left[name]) : 0.0;
    samples.push_back({{{"name", name}, {"state", "AVAILABLE"}}, free});
    samples.push_back(
        {{{"name", name}, {"state", "USED"}}, std::max(0.0, quantity - free)});
  }
  gauges_.Set("loom_resources",
              "This node's resources, used and available (as Ray's "
              "ray_resources)",
              samples);
}

void NodeMetrics::PublishStore(uint64_t in_memory_bytes,
                               uint64_t spilled_bytes) {
  gauges_.Set("loom_object_store_memory",
              "Object bytes in shared memory and spilled to disk (as Ray's "
              "ray_object_store_memory)",
              {{{{"location", "MMAP_SHM"}}, double(in_memory_bytes)},
               {{{"location", "SPILLED"}}, double(spilled_bytes)}});
}

void NodeMetrics::AddUserPoints(
    const google::protobuf::RepeatedPtrField<rpc::MetricPoint>& points) {
  for (const rpc::MetricPoint& p : points) {
    absl::Status s = user_.Add(p);
    if (s.ok()) continue;
    rejected_.Increment();
    if (warned_.size() < 1000 && warned_.insert(p.name()).second) {
      spdlog::warn("user metric refused: {}", std::string(s.message()));
    }
  }
}

}  // namespace loom::raylet
