// src/gcs/cluster_history.h
//
// ClusterHistory: the last hour of the cluster in samples (every 10 s by
// default), kept by the head for the dashboard's charts without
// Prometheus: tasks finished and failed so far, resources in use, and, while
// someone looks at the dashboard, the machines' memory, object stores and
// GPUs as their raylets report them.
//
//   ClusterHistory history(360);
//   history.Add(sample);                   // the oldest past 360 goes
//   for (const auto& s : history.Since(t)) Draw(s);
#ifndef LOOM_GCS_CLUSTER_HISTORY_H_
#define LOOM_GCS_CLUSTER_HISTORY_H_

#include <cstdint>
#include <deque>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace loom::gcs {

struct HistorySample {
  int64_t t_ms = 0;  // Unix ms
  // Since the head started (rates come from two samples).
  int64_t tasks_finished = 0, tasks_failed = 0;
  int64_t nodes_alive = 0;
  double cpu_used = 0, cpu_total = 0, gpu_used = 0, gpu_total = 0;
  // From the raylets, when asked (machine): bytes, and mean GPU busy %.
  bool machine = false;
  double mem_used = 0, mem_total = 0, store_used = 0, store_capacity = 0;
  double gpu_percent = 0;
};

// Thread-safe.
class ClusterHistory {
 public:
  explicit ClusterHistory(size_t capacity) : capacity_(capacity) {}
  void Add(const HistorySample& s);
  // The samples taken after t_ms, oldest first.
  std::vector<HistorySample> Since(int64_t t_ms) const;

 private:
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<HistorySample> samples_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_CLUSTER_HISTORY_H_
