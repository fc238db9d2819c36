#include "src/gcs/global_scheduler.h"

#include "src/common/wire.h"

namespace loom::gcs {

std::vector<NodeState> GlobalScheduler::States(
    std::vector<rpc::NodeInfo>* nodes,
    const std::function<bool(const rpc::NodeInfo&)>& skip) const {
  std::vector<NodeState> states;
  for (rpc::NodeInfo& node : nodes_->All()) {
    if (!node.alive() || (skip && skip(node))) continue;
    auto total = ResourcesFromProto(node.total());
    auto available = ResourcesFromProto(node.available());
    if (!total.ok() || !available.ok()) continue;
    states.push_back(NodeState{node.node_id(),
                               *total,
                               *available,
                               {node.labels().begin(), node.labels().end()}});
    nodes->push_back(std::move(node));
  }
  return states;
}

std::optional<rpc::NodeInfo> GlobalScheduler::Pick(
    const ResourceSet& demand, const Strategy& strategy,
    const std::string& data_node,
    const std::function<bool(const rpc::NodeInfo&)>& skip) {
  std::vector<rpc::NodeInfo> nodes;
  std::vector<NodeState> states = States(&nodes, skip);
  int pick = scheduler_.Pick(states, demand, strategy, data_node);
  if (pick < 0) return std::nullopt;
  return std::move(nodes[pick]);
}

void GlobalScheduler::Debit(const rpc::NodeInfo& node,
                            const ResourceSet& used) {
  auto left = ResourcesFromProto(node.available());
  if (!left.ok() || !left->Contains(used)) return;
  left->Subtract(used);
  nodes_->Debit(node.node_id(), *left);
}

void GlobalScheduler::HandleScheduleLease(const rpc::ScheduleLeaseRequest& req,
                                          rpc::ScheduleLeaseReply* reply,
                                          Done done) {
  auto demand = ResourcesFromProto(req.resources());
  if (!demand.ok()) return done(demand.status());
  auto strategy = StrategyFromProto(req.strategy());
  if (!strategy.ok()) return done(strategy.status());
  std::vector<rpc::NodeInfo> nodes;  // one pass over the table for both
  std::vector<NodeState> states = States(&nodes, nullptr);
  int pick =
      scheduler_.Pick(states, *demand, *strategy, req.preferred_node_id());
  if (pick >= 0) {
    Debit(nodes[pick], *demand);
    reply->set_placed(true);
    *reply->mutable_node() = std::move(nodes[pick]);
  }
  reply->set_feasible(ClusterScheduler::Feasible(states, *demand, *strategy));
  done(absl::OkStatus());
}

}  // namespace loom::gcs
