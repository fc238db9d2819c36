#include "src/gcs/node_table.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "src/common/wire.h"

namespace loom::gcs {

NodeTable::NodeTable(Options options)
    : options_(std::move(options)),
      dead_({.limit = options_.max_dead,
             .erase = [this](const NodeId& id) { Erase(id); }}),
      fenced_order_({.limit = kMaxFenced,
                     .erase =
                         [this](const NodeId& id) {
                           fenced_.erase(id);
                           options_.store->Delete(kFencedTable, id.Binary(),
                                                  [](absl::StatusOr<bool>) {});
                         }}),
      view_version_(
          std::max<int64_t>(1, absl::ToUnixMicros(options_.clock->Now()))),
      first_version_(view_version_) {}

absl::Status NodeTable::Register(const rpc::NodeInfo& info,
                                 const Version& version) {
  auto id = ParseId<NodeId>(info.node_id(), "node_id");
  if (!id.ok()) return id.status();
  if (info.raylet_port() <= 0 || info.raylet_port() > 65535) {
    return absl::InvalidArgumentError("raylet_port out of range");
  }
  if (info.host().empty() || info.host().size() > 255) {
    return absl::InvalidArgumentError("host must be 1..255 characters");
  }
  auto total = ResourcesFromProto(info.total());
  if (!total.ok()) return total.status();
  if (version.build.size() > 256) {
    return absl::InvalidArgumentError("build_version longer than 256 bytes");
  }
  if (auto s = CheckNodeVersion(version, options_.version); !s.ok()) {
    spdlog::warn("refused node {} at {}:{}: {}", id->Hex(), info.host(),
                 info.raylet_port(), std::string(s.message()));
    return s;
  }
  auto it = nodes_.find(*id);
  if ((it != nodes_.end() && !it->second.info.alive()) || fenced_.count(*id)) {
    return Fenced(*id);
  }
  bool is_new = it == nodes_.end();
  must_register_.erase(*id);
  Node& node = nodes_[*id];
  node.info = info;
  node.info.set_alive(true);
  node.info.clear_pending();
  node.info.clear_infeasible();
  *node.info.mutable_available() = info.total();
  node.last_seen = options_.clock->Now();
  node.info.set_last_heartbeat_ms(absl::ToUnixMillis(node.last_seen));
  Changed(node);
  options_.store->Put("nodes", id->Binary(), node.info.SerializeAsString(),
                      true, MustSave("a node"));
  if (is_new) {
    spdlog::info("node {} registered at {}:{} with {}", id->Hex(), info.host(),
                 info.raylet_port(), total->ToString());
    options_.publisher->Publish(rpc::Event::NODE_ADDED, id->Binary(),
                                info.host());
  }
  return absl::OkStatus();
}

void NodeTable::Debit(const std::string& node_id, const ResourceSet& used) {
  auto at = alive_index_.find(node_id);
  if (at == alive_index_.end()) return;
  ResourceSet& available = alive_[at->second].available;
  if (!available.Contains(used)) return;
  available.Subtract(used);
  *nodes_.at(*NodeId::FromBinary(node_id)).info.mutable_available() =
      ResourcesToProto(available);
}

absl::Status NodeTable::Heartbeat(const rpc::HeartbeatRequest& request,
                                  rpc::HeartbeatReply* reply) {
  auto id = ParseId<NodeId>(request.node_id(), "node_id");
  if (!id.ok()) return id.status();
  auto available = ResourcesFromProto(request.available());
  if (!available.ok()) return available.status();
  std::optional<ResourceSet> total;
  if (request.has_total()) {
    auto parsed = ResourcesFromProto(request.total());
    if (!parsed.ok()) return parsed.status();
    total = *std::move(parsed);
  }
  for (const auto& list : {request.pending(), request.infeasible()}) {
    if (list.size() > 10000) {
      return absl::InvalidArgumentError("too many demands in one heartbeat");
    }
    for (const auto& d : list) {
      auto parsed = ResourcesFromProto(d.shape());
      if (!parsed.ok()) return parsed.status();
      if (d.count() <= 0) {
        return absl::InvalidArgumentError("a demand's count must be positive");
      }
    }
  }
  auto it = nodes_.find(*id);
  if (it == nodes_.end() || must_register_.contains(*id)) {
    return absl::NotFoundError("unknown node: register again");
  }
  Node& node = it->second;
  if (!node.info.alive()) return Fenced(*id);
  node.last_seen = options_.clock->Now();
  node.info.set_last_heartbeat_ms(absl::ToUnixMillis(node.last_seen));
  NodeState& state = alive_[alive_index_.at(request.node_id())];
  bool changed =
      !(state.available == *available) || (total && !(state.total == *total));
  *node.info.mutable_available() = request.available();
  if (total) *node.info.mutable_total() = request.total();
  *node.info.mutable_pending() = request.pending();
  *node.info.mutable_infeasible() = request.infeasible();
  if (changed) Changed(node);
  FillView(request.view_version(), reply);
  return absl::OkStatus();
}

void NodeTable::FillView(int64_t since, rpc::HeartbeatReply* reply) const {
  reply->set_view_version(view_version_);
  if (since == view_version_) return;
  bool delta = since >= first_version_ && since < view_version_;
  reply->set_view_included(true);
  reply->set_view_delta(delta);
  for (const auto& [nid, node] : nodes_) {
    if (delta ? node.changed <= since : !node.info.alive()) continue;
    rpc::NodeInfo* out = reply->add_nodes();
    *out = node.info;
    out->clear_pending();  // raylets place by resources, not demands
    out->clear_infeasible();
  }
}

void NodeTable::Changed(Node& node) {
  node.changed = ++view_version_;
  const std::string& id = node.info.node_id();
  auto at = alive_index_.find(id);
  if (!node.info.alive()) {
    if (at == alive_index_.end()) return;
    size_t i = at->second;
    alive_index_.erase(at);
    if (i + 1 != alive_.size()) {
      alive_[i] = std::move(alive_.back());
      alive_index_[alive_[i].node_id] = i;
    }
    alive_.pop_back();
    return;
  }
  if (at == alive_index_.end()) {
    at = alive_index_.emplace(id, alive_.size()).first;
    alive_.emplace_back();
  }
  NodeState& state = alive_[at->second];
  state.node_id = id;
  state.total = ResourcesFromProto(node.info.total()).value_or(ResourceSet());
  state.available =
      ResourcesFromProto(node.info.available()).value_or(ResourceSet());
  state.labels = {node.info.labels().begin(), node.info.labels().end()};
}

absl::Status NodeTable::Unregister(const std::string& node_id) {
  auto id = ParseId<NodeId>(node_id, "node_id");
  if (!id.ok()) return id.status();
  auto it = nodes_.find(*id);
  if (it == nodes_.end()) return absl::NotFoundError("unknown node");
  if (it->second.info.alive()) MarkDead(it->second, "unregistered (stopped)");
  return absl::OkStatus();
}

absl::Time NodeTable::CheckTimeouts() {
  absl::Time now = options_.clock->Now();
  absl::Time next = absl::InfiniteFuture();
  std::vector<NodeId> late;
  for (auto& [id, node] : nodes_) {
    if (!node.info.alive()) continue;
    if (now - node.last_seen > options_.timeout) {
      late.push_back(id);
    } else {
      next = std::min(next, node.last_seen + options_.timeout);
    }
  }
  // MarkDead may erase the oldest dead node: not while iterating.
  for (const NodeId& id : late) {
    Node& node = nodes_.at(id);
    MarkDead(node, "missed heartbeats for " +
                       absl::FormatDuration(now - node.last_seen));
  }
  return next;
}

void NodeTable::Excuse(absl::Duration stall) {
  absl::Time now = options_.clock->Now();
  int alive = 0;
  for (auto& [id, node] : nodes_) {
    if (!node.info.alive()) continue;
    node.last_seen = std::min(now, node.last_seen + stall);
    ++alive;
  }
  spdlog::warn(
      "the head's loop stalled: the last {} are not counted in its {} alive "
      "nodes' silence",
      absl::FormatDuration(stall), alive);
}

void NodeTable::MarkDead(Node& node, const std::string& why) {
  NodeId id = *NodeId::FromBinary(node.info.node_id());
  node.info.set_alive(false);
  node.info.clear_available();
  node.info.clear_pending();
  node.info.clear_infeasible();
  Changed(node);
  spdlog::warn("node {} is dead: {}", id.Hex(), why);
  must_register_.erase(id);
  options_.store->Put("nodes", id.Binary(), node.info.SerializeAsString(), true,
                      MustSave("a node"));
  options_.publisher->Publish(rpc::Event::NODE_DEAD, id.Binary(), why);
  if (options_.on_node_dead) options_.on_node_dead(id);
  dead_.Ended(id);  // may erase the oldest dead node (not this one)
}

void NodeTable::Erase(const NodeId& id) {
  nodes_.erase(id);
  options_.store->Delete("nodes", id.Binary(), [](absl::StatusOr<bool>) {});
  // A node missing from the view is dead to a raylet that had it; one
  // whose version predates this one gets the whole view.
  first_version_ = view_version_;
  Fence(id, absl::ToUnixMillis(options_.clock->Now()));
}

void NodeTable::Fence(const NodeId& id, int64_t erased_ms) {
  if (!fenced_.insert(id).second) return;
  options_.store->Put(kFencedTable, id.Binary(), absl::StrCat(erased_ms), true,
                      MustSave("a fenced node"));
  fenced_order_.Ended(id);  // may forget the oldest
}

absl::Status NodeTable::Load(const StoreClient::Table& rows,
                             const StoreClient::Table& fenced) {
  std::vector<std::pair<int64_t, NodeId>> erased;
  for (const auto& [key, value] : fenced) {
    auto id = NodeId::FromBinary(key);
    int64_t ms = 0;
    if (!id.ok() || !absl::SimpleAtoi(value, &ms)) {
      return absl::DataLossError(
          absl::StrCat("a row of the ", kFencedTable, " table does not parse"));
    }
    if (fenced_.insert(*id).second) erased.emplace_back(ms, *id);
  }
  fenced_order_.Load(std::move(erased));  // the bound forgets the oldest
  absl::Time now = options_.clock->Now();
  std::vector<std::pair<int64_t, NodeId>> dead;
  for (const auto& [key, value] : rows) {
    Node node;
    auto id = NodeId::FromBinary(key);
    if (!id.ok() || !node.info.ParseFromString(value)) {
      return absl::DataLossError("a row of the nodes table does not parse");
    }
    if (node.info.alive()) {
      must_register_.insert(*id);
      node.last_seen = now;
    } else {
      dead.emplace_back(node.info.last_heartbeat_ms(), *id);
    }
    Node& kept = nodes_[*id] = std::move(node);
    Changed(kept);
  }
  dead_.Load(std::move(dead));  // the bound erases those that died first
  first_version_ = view_version_;
  return absl::OkStatus();
}

absl::Status NodeTable::Fenced(const NodeId& id) {
  return absl::FailedPreconditionError(absl::StrCat(
      "node ", id.Hex(),
      " was declared dead: it is fenced (its work was failed over or "
      "restarted elsewhere); start the node again to join as a new one"));
}

const rpc::NodeInfo* NodeTable::Find(const std::string& node_id) const {
  auto id = NodeId::FromBinary(node_id);
  if (!id.ok()) return nullptr;
  auto it = nodes_.find(*id);
  return it == nodes_.end() ? nullptr : &it->second.info;
}

}  // namespace loom::gcs
