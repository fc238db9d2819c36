#include "scheduler/cluster_scheduler.h"

namespace loom {
namespace {

bool Admits(const Strategy& s, const NodeState& n,
            const std::function<bool(const NodeState&)>& skip) {
  if (skip && skip(n)) return false;
  if (!LabelsMatch(s.labels, n.labels)) return false;
  return s.kind != Strategy::kNodeAffinity || s.soft || n.node_id == s.node_id;
}

}  // namespace

int ClusterScheduler::Pick(const std::vector<NodeState>& nodes,
                           const ResourceSet& demand, const Strategy& strategy,
                           const std::string& data_node,
                           const std::function<bool(const NodeState&)>& skip) {
  int best = -1, preferred = -1, local = -1;
  double best_use = 2;
  int fitting = 0;
  for (int i = 0; i < static_cast<int>(nodes.size()); ++i) {
    const NodeState& n = nodes[i];
    if (!Admits(strategy, n, skip) || !n.available.Contains(demand)) continue;
    ++fitting;
    if (strategy.kind == Strategy::kNodeAffinity &&
        n.node_id == strategy.node_id) {
      preferred = i;
    }
    if (!data_node.empty() && n.node_id == data_node) local = i;
    double use = Utilization(n.total, n.available, demand);
    if (use < best_use) {
      best = i;
      best_use = use;
    }
  }
  if (fitting == 0) return -1;
  if (preferred >= 0) return preferred;
  if (strategy.kind == Strategy::kSpread) {
    // The fitting nodes in turn.
    uint64_t turn = spread_next_++ % fitting;
    for (int i = 0; i < static_cast<int>(nodes.size()); ++i) {
      if (!Admits(strategy, nodes[i], skip) ||
          !nodes[i].available.Contains(demand)) {
        continue;
      }
      if (turn-- == 0) return i;
    }
  }
  if (local >= 0) return local;
  return best;
}

bool ClusterScheduler::Feasible(const std::vector<NodeState>& nodes,
                                const ResourceSet& demand,
                                const Strategy& strategy) {
  for (const NodeState& n : nodes) {
    if (Admits(strategy, n, nullptr) && n.total.Contains(demand)) return true;
  }
  return false;
}

}  // namespace loom
