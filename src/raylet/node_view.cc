// src/raylet/node_view.cc
//
// NodeManager's heartbeat (its resources, and its queued and infeasible
// demands by shape) and its view of the other nodes: replaced by a whole
// view from the head, or changed by a delta (the nodes that changed since
// the version this node acknowledged with its heartbeat, dead ones
// included), less what this node spilled to a node after that node's last
// heartbeat (so that a burst of spillbacks does not all go to the node that
// looked idle), and cut at once when the head says a node died.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "src/common/wire.h"
#include "src/raylet/node_manager.h"

namespace loom::raylet {

void NodeManager::FillHeartbeat(rpc::HeartbeatRequest* req) {
  req->set_node_id(options_.node_id.Binary());
  if (totals_changed_) {
    *req->mutable_total() = ResourcesToProto(resources_.total());
    totals_changed_ = false;
  }
  *req->mutable_available() = NonNegative(resources_.available());
  AddDemands(queue_.PendingDemands(), req->mutable_pending());
  AddDemands(queue_.InfeasibleDemands(), req->mutable_infeasible());
  req->set_view_version(view_version_);
  quotas_.FillUse(options_.object_store != nullptr
                      ? options_.object_store->job_bytes()
                      : absl::flat_hash_map<JobId, uint64_t>(),
                  req);
}

void NodeManager::AddDemands(
    const std::vector<ResourceSet>& demands,
    google::protobuf::RepeatedPtrField<rpc::Demand>* into) {
  // By shape, with counts: a queue of 100,000 tasks of one shape is one
  // entry. The head takes at most 10,000 shapes.
  constexpr size_t kMaxShapes = 10000;
  std::vector<std::pair<ResourceSet, int64_t>> shapes;
  for (const ResourceSet& d : demands) {
    auto it = std::find_if(shapes.begin(), shapes.end(),
                           [&](const auto& s) { return s.first == d; });
    if (it != shapes.end()) {
      ++it->second;
    } else if (shapes.size() < kMaxShapes) {
      shapes.emplace_back(d, 1);
    }
  }
  for (const auto& [shape, count] : shapes) {
    rpc::Demand* out = into->Add();
    *out->mutable_shape() = ResourcesToProto(shape);
    out->set_count(count);
  }
}

void NodeManager::OnView(const rpc::HeartbeatReply& reply) {
  OnQuotas(reply);
  if (!reply.view_included()) return;
  view_version_ = reply.view_version();
  bool whole = !reply.view_delta();
  {
    absl::MutexLock lock(&addresses_mu_);
    if (whole) {
      // A node gone from the view is dead: its channel goes too.
      absl::flat_hash_set<std::string> in_view;
      for (const auto& node : reply.nodes()) in_view.insert(node.node_id());
      for (auto it = addresses_.begin(); it != addresses_.end();) {
        auto next = std::next(it);
        if (!in_view.contains(it->first.Binary())) {
          clients_.Drop(it->second);
          addresses_.erase(it);
        }
        it = next;
      }
    }
    for (const auto& node : reply.nodes()) {
      auto id = NodeId::FromBinary(node.node_id());
      if (!id.ok()) continue;
      if (node.alive()) {
        addresses_[*id] = RayletAddress(node);
      } else if (auto it = addresses_.find(*id); it != addresses_.end()) {
        clients_.Drop(it->second);
        addresses_.erase(it);
      }
    }
  }
  size_t known = others_.size();
  if (whole) {
    others_.clear();
    reported_.clear();
  }
  absl::flat_hash_map<std::string, size_t> index;
  for (size_t i = 0; i < others_.size(); ++i) index[others_[i].node_id] = i;
  std::vector<bool> gone(others_.size(), false);
  for (const auto& node : reply.nodes()) {
    if (node.node_id() == options_.node_id.Binary()) continue;
    auto at = index.find(node.node_id());
    if (!node.alive()) {
      if (at != index.end()) gone[at->second] = true;
      reported_.erase(node.node_id());
      continue;
    }
    auto total = ResourcesFromProto(node.total());
    auto available = ResourcesFromProto(node.available());
    if (!total.ok() || !available.ok()) continue;
    RemoteNode updated{
        node.node_id(),     node.host(),
        node.raylet_port(), *total,
        *available,         {node.labels().begin(), node.labels().end()}};
    reported_[node.node_id()] = {
        *available, absl::FromUnixMillis(node.last_heartbeat_ms())};
    if (at != index.end()) {
      others_[at->second] = std::move(updated);
      gone[at->second] = false;
    } else {
      index[node.node_id()] = others_.size();
      others_.push_back(std::move(updated));
      gone.push_back(false);
    }
  }
  size_t kept = 0;
  for (size_t i = 0; i < others_.size(); ++i) {
    if (gone[i]) continue;
    if (kept != i) others_[kept] = std::move(others_[i]);  // not onto itself
    ++kept;
  }
  others_.resize(kept);
  // Every node's availability is what it last reported less what this node
  // spilled to it since: a delta leaves out the nodes that did not change,
  // and this pass's spillbacks were taken off in place.
  for (RemoteNode& node : others_) {
    auto r = reported_.find(node.node_id);
    if (r == reported_.end()) continue;
    node.available = r->second.available;
    ApplySpillDebits(node, r->second.heartbeat);
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
  reported_.erase(node_id);
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
