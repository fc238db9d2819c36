// src/raylet/node_metrics.h
//
// NodeMetrics: what the raylet's /metrics says beyond its own counters,
// under Ray's names where Ray has one: the machine (NodeStats), resources
// (loom_resources{name,state=USED|AVAILABLE}) and object store memory
// (loom_object_store_memory{location=MMAP_SHM|SPILLED}) as the node
// manager's loop last published them, and the user metrics its workers
// report (UserMetrics).
//
//   NodeMetrics node({.metrics = &metrics, .disk_path = session_dir});
//   node.PublishResources(resources.total(), resources.available());
//   node.AddUserPoints(report.metrics());
#ifndef LOOM_RAYLET_NODE_METRICS_H_
#define LOOM_RAYLET_NODE_METRICS_H_

#include <memory>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "proto/raylet.pb.h"
#include "scheduler/resource_set.h"
#include "src/common/metrics.h"
#include "src/raylet/node_stats.h"
#include "src/raylet/user_metrics.h"

namespace loom::raylet {

// Not thread-safe: the Publish and Add calls come from the raylet's loop
// (scrapes read what they published, on the endpoint's threads).
class NodeMetrics {
 public:
  struct Options {
    Metrics* metrics = nullptr;
    std::string disk_path;  // see NodeStats::Options
    size_t max_user_series = 10000;
  };
  explicit NodeMetrics(Options options);
  ~NodeMetrics();

  void PublishResources(const ResourceSet& total, const ResourceSet& available);
  void PublishStore(uint64_t in_memory_bytes, uint64_t spilled_bytes);
  // The machine's figures for GetNodeStats (NodeStats::Fill).
  void FillHost(rpc::HostStats* out) { machine_.Fill(out); }
  // Keeps a worker's points; one that UserMetrics refuses is counted
  // (loom_user_metrics_rejected_total) and logged once per metric.
  void AddUserPoints(
      const google::protobuf::RepeatedPtrField<rpc::MetricPoint>& points);

 private:
  Options options_;
  NodeStats machine_;
  UserMetrics user_;
  GaugeSnapshot gauges_;
  prometheus::Counter& rejected_;
  absl::flat_hash_set<std::string> warned_;  // metrics whose refusal was logged
  std::unique_ptr<MetricSource> source_;
};

}  // namespace loom::raylet

#endif  // LOOM_RAYLET_NODE_METRICS_H_
