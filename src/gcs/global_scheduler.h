// src/gcs/global_scheduler.h
//
// GlobalScheduler: the head's choice of a node, over every alive node it
// knows (the node table's live resources, read in place). Actors are placed
// through it, and raylets hand it the lease requests they cannot place
// (ScheduleLease). A node it picks has the demand counted against its available
// resources until the node's next heartbeat says what it really has, so that a
// burst spreads out.
//
//   GlobalScheduler scheduler(&nodes);
//   auto node = scheduler.Pick(demand, strategy, data_node, skip);
//   absl::Status s = scheduler.ScheduleLease(req, &reply);  // on the GCS loop
#ifndef LOOM_GCS_GLOBAL_SCHEDULER_H_
#define LOOM_GCS_GLOBAL_SCHEDULER_H_

#include <functional>
#include <optional>
#include <string>

#include "proto/gcs.pb.h"
#include "scheduler/cluster_scheduler.h"
#include "src/gcs/node_table.h"

namespace loom::gcs {

using Done = std::function<void(absl::Status)>;

// Not thread-safe: runs on the GCS loop.
class GlobalScheduler {
 public:
  explicit GlobalScheduler(NodeTable* nodes) : nodes_(nodes) {}

  // The node to run `demand` on now, if any fits; `skip` passes over
  // nodes (unreachable ones).
  std::optional<rpc::NodeInfo> Pick(
      const ResourceSet& demand, const Strategy& strategy,
      const std::string& data_node = "",
      const std::function<bool(const NodeState&)>& skip = nullptr);
  // Counts `used` against the node until its next heartbeat.
  void Debit(const std::string& node_id, const ResourceSet& used) {
    nodes_->Debit(node_id, used);
  }

  // A raylet's request it could not place (InvalidArgument when malformed).
  absl::Status ScheduleLease(const rpc::ScheduleLeaseRequest& req,
                             rpc::ScheduleLeaseReply* reply);

 private:
  NodeTable* nodes_;
  ClusterScheduler scheduler_;
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_GLOBAL_SCHEDULER_H_
