#include "src/gcs/global_scheduler.h"

#include "src/common/wire.h"

namespace loom::gcs {

std::optional<rpc::NodeInfo> GlobalScheduler::Pick(
    const ResourceSet& demand, const Strategy& strategy,
    const std::string& data_node,
    const std::function<bool(const NodeState&)>& skip) {
  const std::vector<NodeState>& alive = nodes_->alive();
  int pick = scheduler_.Pick(alive, demand, strategy, data_node, skip);
  if (pick < 0) return std::nullopt;
  return *nodes_->Find(alive[pick].node_id);
}

absl::Status GlobalScheduler::ScheduleLease(
    const rpc::ScheduleLeaseRequest& req, rpc::ScheduleLeaseReply* reply) {
  auto demand = ResourcesFromProto(req.resources());
  if (!demand.ok()) return demand.status();
  auto strategy = StrategyFromProto(req.strategy());
  if (!strategy.ok()) return strategy.status();
  const std::vector<NodeState>& alive = nodes_->alive();
  int pick =
      scheduler_.Pick(alive, *demand, *strategy, req.preferred_node_id());
  if (pick >= 0) {
    std::string node_id = alive[pick].node_id;
    nodes_->Debit(node_id, *demand);
    reply->set_placed(true);
    *reply->mutable_node() = *nodes_->Find(node_id);
  }
  reply->set_feasible(ClusterScheduler::Feasible(alive, *demand, *strategy));
  return absl::OkStatus();
}

}  // namespace loom::gcs
