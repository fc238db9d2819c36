// src/raylet/node_view.cc
//
// NodeManager's view of the other nodes: replaced by each view the head
// sends with a heartbeat reply, less what this node spilled to a node after
// that node's last heartbeat (so that a burst of spillbacks does not all go
// to the node that looked idle), and cut at once when the head says a node
// died.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "src/common/wire.h"
#include "src/raylet/node_manager.h"

namespace loom::raylet {

void NodeManager::OnView(const rpc::HeartbeatReply& reply) {
  if (!reply.view_included()) return;
  view_version_ = reply.view_version();
  {
    absl::MutexLock lock(&addresses_mu_);
    auto before = std::move(addresses_);
    addresses_.clear();
    for (const auto& node : reply.nodes()) {
      auto id = NodeId::FromBinary(node.node_id());
      if (id.ok()) {
        addresses_[*id] = RayletAddress(node);
      }
    }
    // A node gone from the view is dead: its channel goes too.
    for (const auto& [id, address] : before) {
      if (!addresses_.contains(id)) clients_.Drop(address);
    }
  }
  size_t known = others_.size();
  others_.clear();
  for (const auto& node : reply.nodes()) {
    if (node.node_id() == options_.node_id.Binary() || !node.alive()) continue;
    auto total = ResourcesFromProto(node.total());
    auto available = ResourcesFromProto(node.available());
    if (!total.ok() || !available.ok()) continue;
    others_.push_back(RemoteNode{node.node_id(),
                                 node.host(),
                                 node.raylet_port(),
                                 *total,
                                 *available,
                                 {node.labels().begin(), node.labels().end()}});
    ApplySpillDebits(others_.back(),
                     absl::FromUnixMillis(node.last_heartbeat_ms()));
  }
  for (auto it = spill_debits_.begin(); it != spill_debits_.end();) {
    auto next = std::next(it);
    if (it->second.empty()) spill_debits_.erase(it);
    it = next;
  }
  if (others_.size() != known) {
    spdlog::info("this node's view: {} other nodes alive", others_.size());
  }
  Dispatch();
}

void NodeManager::ApplySpillDebits(RemoteNode& node, absl::Time heartbeat) {
  auto it = spill_debits_.find(node.node_id);
  if (it == spill_debits_.end()) return;
  // A spillback reaches its node a little after this node sent it: one
  // sent shortly before the heartbeat may not be in it either.
  constexpr absl::Duration kInFlight = absl::Milliseconds(100);
  constexpr absl::Duration kForget = absl::Seconds(10);
  absl::Time now = options_.clock->Now();
  auto& debits = it->second;
  debits.erase(std::remove_if(debits.begin(), debits.end(),
                              [&](const SpillDebit& d) {
                                return d.at < heartbeat - kInFlight ||
                                       d.at < now - kForget;
                              }),
               debits.end());
  for (const SpillDebit& d : debits) {
    if (node.available.Contains(d.demand)) node.available.Subtract(d.demand);
  }
}

void NodeManager::OnNodeDead(const std::string& node_id) {
  // At once, not at the next view: owners retry the node's work as soon as
  // they hear, and must not be spilled back to it meanwhile.
  spill_debits_.erase(node_id);
  auto before = others_.size();
  others_.erase(
      std::remove_if(others_.begin(), others_.end(),
                     [&](const RemoteNode& n) { return n.node_id == node_id; }),
      others_.end());
  if (others_.size() != before) {
    spdlog::info("node {} is dead: out of this node's view",
                 NodeId::FromBinary(node_id).ok()
                     ? NodeId::FromBinary(node_id)->Hex()
                     : std::string("?"));
  }
}

}  // namespace loom::raylet
