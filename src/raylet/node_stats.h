// src/raylet/node_stats.h
//
// NodeStats: the machine's CPU, memory, disk, network and GPUs, read from
// /proc, statvfs and NVML at each scrape of the raylet's /metrics, under
// Ray's names (ray_node_cpu_utilization -> loom_node_cpu_utilization...).
// Rates (CPU utilisation, network speeds) cover the time since the last
// scrape; the first scrape's CPU figure is the average since boot.
//
//   NodeStats stats({.disk_path = session_dir});
//   auto source = metrics.AddSource([&] { return stats.Collect(); });
#ifndef LOOM_RAYLET_NODE_STATS_H_
#define LOOM_RAYLET_NODE_STATS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/raylet.pb.h"
#include "src/common/metrics.h"
#include "src/raylet/gpus.h"

namespace loom::raylet {

// Thread-safe.
class NodeStats {
 public:
  struct Options {
    // The filesystem whose usage is reported ("": /).
    std::string disk_path;
    // Where /proc is (tests give a fake one).
    std::string proc = "/proc";
  };
  explicit NodeStats(Options options);
  ~NodeStats();

  MetricFamilies Collect();
  // The same figures for GetNodeStats (the dashboard), CPU over the time
  // since the previous Fill: a window of its own, apart from the scrapes'.
  void Fill(rpc::HostStats* out);

  struct CpuTimes {
    uint64_t busy = 0, total = 0;  // jiffies since boot
  };
  struct Network {
    uint64_t received = 0, sent = 0;  // bytes since boot, all but loopback
  };

 private:
  const Options options_;
  std::unique_ptr<GpuMonitor> gpus_;
  absl::Mutex mu_;
  CpuTimes last_cpu_ ABSL_GUARDED_BY(mu_);
  Network last_net_ ABSL_GUARDED_BY(mu_);
  absl::Time last_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  CpuTimes last_fill_cpu_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loom::raylet

#endif  // LOOM_RAYLET_NODE_STATS_H_
