// src/gcs/head_metrics.h
//
// HeadMetrics: what the head's /metrics says about the whole cluster beyond
// its own counters: tasks by state and per-function latency histograms (read
// from the TaskStore at each scrape), actors and placement groups by state
// (loom_actors{state,name}, loom_placement_groups{state}, as Ray names them),
// and the Prometheus file-service-discovery file that lists every metrics
// endpoint of the cluster (docs/observability.md).
//
//   HeadMetrics head({.metrics = &metrics, .tasks = &tasks,
//                     .sd_file = dir + "/prometheus_sd.json",
//                     .self_target = "10.0.0.1:8080"});
//   head.Refresh(actors.CountByState(), groups.CountByState(), alive_nodes);
#ifndef LOOM_GCS_HEAD_METRICS_H_
#define LOOM_GCS_HEAD_METRICS_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "proto/common.pb.h"
#include "src/common/metrics.h"
#include "src/gcs/task_store.h"

namespace loom::gcs {

// Not thread-safe: Refresh runs on the head's loop (scrapes read what it
// published, on the endpoint's threads).
class HeadMetrics {
 public:
  struct Options {
    Metrics* metrics = nullptr;
    const TaskStore* tasks = nullptr;
    // Where the service-discovery file goes ("": none).
    std::string sd_file;
    // The head's own metrics endpoint, HOST:PORT ("": not listed).
    std::string self_target;
  };
  explicit HeadMetrics(Options options);
  ~HeadMetrics();

  using ActorCounts = std::map<std::pair<std::string, std::string>, int64_t>;
  // Publishes actors by (state, class) and groups by state, and rewrites
  // the discovery file when the alive nodes' endpoints changed.
  void Refresh(const ActorCounts& actors,
               const std::map<std::string, int64_t>& groups,
               const std::vector<rpc::NodeInfo>& nodes);

  // The discovery file's JSON for these nodes (alive ones with a metrics
  // port) and the head.
  static std::string DiscoveryJson(const std::vector<rpc::NodeInfo>& nodes,
                                   const std::string& self_target);

 private:
  Options options_;
  GaugeSnapshot gauges_;
  std::unique_ptr<MetricSource> source_;
  std::string written_;  // the discovery file's content as last written
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_HEAD_METRICS_H_
