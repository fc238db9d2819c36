#include "src/gcs/head_metrics.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "src/common/ids.h"
#include "src/common/session.h"

namespace loom::gcs {

HeadMetrics::HeadMetrics(Options options) : options_(std::move(options)) {
  source_ = options_.metrics->AddSource([this] {
    MetricFamilies out = options_.tasks->Collect();
    for (auto& family : gauges_.Collect()) out.push_back(std::move(family));
    return out;
  });
}

// The source goes first: no scrape runs past this point.
HeadMetrics::~HeadMetrics() { source_.reset(); }

void HeadMetrics::Refresh(const ActorCounts& actors,
                          const std::map<std::string, int64_t>& groups,
                          const std::vector<rpc::NodeInfo>& nodes) {
  std::vector<GaugeSnapshot::Sample> samples;
  for (const auto& [key, n] : actors) {
    samples.push_back(
        {{{"state", key.first}, {"name", key.second}}, static_cast<double>(n)});
  }
  gauges_.Set("loom_actors", "Actors by state and class (as Ray's ray_actors)",
              samples);
  samples.clear();
  for (const auto& [state, n] : groups) {
    samples.push_back({{{"state", state}}, static_cast<double>(n)});
  }
  gauges_.Set("loom_placement_groups",
              "Placement groups by state (as Ray's ray_placement_groups)",
              samples);
  if (options_.sd_file.empty()) return;
  std::string json = DiscoveryJson(nodes, options_.self_target);
  if (json == written_) return;
  if (auto s = WriteFileAtomic(options_.sd_file, json); !s.ok()) {
    spdlog::error("metrics discovery file: {}", s.ToString());
    return;
  }
  written_ = std::move(json);
}

std::string HeadMetrics::DiscoveryJson(const std::vector<rpc::NodeInfo>& nodes,
                                       const std::string& self_target) {
  // Prometheus' file_sd format: a list of target groups with labels. Hosts
  // and ids are addresses and hex: nothing to escape.
  std::vector<std::string> groups;
  if (!self_target.empty()) {
    groups.push_back(
        absl::StrCat(R"({"targets": [")", self_target,
                     R"("], "labels": {"loom_component": "head"}})"));
  }
  for (const rpc::NodeInfo& n : nodes) {
    if (!n.alive() || n.metrics_port() <= 0) continue;
    bool v6 = n.host().find(':') != std::string::npos;
    groups.push_back(absl::StrCat(
        R"({"targets": [")", v6 ? "[" : "", n.host(), v6 ? "]" : "", ":",
        n.metrics_port(),
        R"("], "labels": {"loom_component": "raylet", "node_id": ")",
        HexEncode(n.node_id()), R"("}})"));
  }
  std::string out = "[";
  for (size_t i = 0; i < groups.size(); ++i) {
    absl::StrAppend(&out, i ? ",\n  " : "\n  ", groups[i]);
  }
  absl::StrAppend(&out, groups.empty() ? "]\n" : "\n]\n");
  return out;
}

}  // namespace loom::gcs
