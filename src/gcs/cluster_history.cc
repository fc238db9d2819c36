#include "src/gcs/cluster_history.h"

namespace loom::gcs {

void ClusterHistory::Add(const HistorySample& s) {
  absl::MutexLock lock(&mu_);
  samples_.push_back(s);
  while (samples_.size() > capacity_) samples_.pop_front();
}

std::vector<HistorySample> ClusterHistory::Since(int64_t t_ms) const {
  absl::MutexLock lock(&mu_);
  std::vector<HistorySample> out;
  for (const HistorySample& s : samples_) {
    if (s.t_ms > t_ms) out.push_back(s);
  }
  return out;
}

}  // namespace loom::gcs
