// scheduler/cluster_scheduler.h
//
// ClusterScheduler: the head's choice of a node for a demand, over every
// node it knows (actors, and what a raylet cannot place). Among the nodes
// the strategy admits (label selector; hard node affinity: that node) and
// that fit now: the node holding the demand's data when it fits (locality),
// a soft affinity's node, the next in turn for SPREAD, else the least
// utilized. Pure logic, like the raylet's LeaseQueue.
//
//   ClusterScheduler scheduler;
//   int i = scheduler.Pick(nodes, demand, strategy, data_node);  // -1: none
#ifndef LOOM_SCHEDULER_CLUSTER_SCHEDULER_H_
#define LOOM_SCHEDULER_CLUSTER_SCHEDULER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "scheduler/lease_queue.h"

namespace loom {

struct NodeState {
  std::string node_id;  // binary
  ResourceSet total;
  ResourceSet available;
  std::map<std::string, std::string> labels;
};

// Not thread-safe.
class ClusterScheduler {
 public:
  // The index in `nodes` of the node to run the demand on; -1 when none
  // fits now. `data_node`: where most of its arguments' bytes are; `skip`
  // passes over nodes (unreachable ones).
  int Pick(const std::vector<NodeState>& nodes, const ResourceSet& demand,
           const Strategy& strategy, const std::string& data_node = "",
           const std::function<bool(const NodeState&)>& skip = nullptr);
  // Whether any node could ever run the demand (its totals).
  static bool Feasible(const std::vector<NodeState>& nodes,
                       const ResourceSet& demand, const Strategy& strategy);

 private:
  uint64_t spread_next_ = 0;
};

}  // namespace loom

#endif  // LOOM_SCHEDULER_CLUSTER_SCHEDULER_H_
