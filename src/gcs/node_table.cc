#include "src/gcs/node_table.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "src/common/wire.h"

namespace loom::gcs {

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
  if (auto it = nodes_.find(*id); it != nodes_.end() && !it->second.alive()) {
    return Fenced(*id);
  }
  bool is_new = !nodes_.contains(*id);
  must_register_.erase(*id);
  rpc::NodeInfo& node = nodes_[*id];
  node = info;
  node.set_alive(true);
  *node.mutable_available() = info.total();
  last_seen_[*id] = options_.clock->Now();
  node.set_last_heartbeat_ms(absl::ToUnixMillis(last_seen_[*id]));
  ++view_version_;
  options_.store->Put("nodes", id->Binary(), node.SerializeAsString(), true,
                      MustSave("a node"));
  if (is_new) {
    spdlog::info("node {} registered at {}:{} with {}", id->Hex(), info.host(),
                 info.raylet_port(), total->ToString());
    options_.publisher->Publish(rpc::Event::NODE_ADDED, id->Binary(),
                                info.host());
  }
  return absl::OkStatus();
}

void NodeTable::Debit(const std::string& node_id,
                      const ResourceSet& available) {
  auto id = NodeId::FromBinary(node_id);
  if (!id.ok()) return;
  auto it = nodes_.find(*id);
  if (it != nodes_.end()) {
    *it->second.mutable_available() = ResourcesToProto(available);
  }
}

absl::Status NodeTable::Heartbeat(const rpc::HeartbeatRequest& request,
                                  rpc::HeartbeatReply* reply) {
  auto id = ParseId<NodeId>(request.node_id(), "node_id");
  if (!id.ok()) return id.status();
  auto available = ResourcesFromProto(request.available());
  if (!available.ok()) return available.status();
  if (request.has_total()) {
    auto total = ResourcesFromProto(request.total());
    if (!total.ok()) return total.status();
  }
  for (const auto& list : {request.pending(), request.infeasible()}) {
    if (list.size() > 10000) {
      return absl::InvalidArgumentError("too many demands in one heartbeat");
    }
    for (const auto& d : list) {
      auto parsed = ResourcesFromProto(d);
      if (!parsed.ok()) return parsed.status();
    }
  }
  auto it = nodes_.find(*id);
  if (it == nodes_.end() || must_register_.contains(*id)) {
    return absl::NotFoundError("unknown node: register again");
  }
  if (!it->second.alive()) return Fenced(*id);
  rpc::NodeInfo& node = it->second;
  absl::Time now = options_.clock->Now();
  last_seen_[*id] = now;
  node.set_last_heartbeat_ms(absl::ToUnixMillis(now));
  if (!(ResourcesFromProto(node.available()).value() == *available)) {
    ++view_version_;
  }
  *node.mutable_available() = request.available();
  if (request.has_total()) {
    if (!(ResourcesFromProto(node.total()).value() ==
          ResourcesFromProto(request.total()).value())) {
      ++view_version_;
    }
    *node.mutable_total() = request.total();
  }
  *node.mutable_pending() = request.pending();
  *node.mutable_infeasible() = request.infeasible();
  reply->set_view_version(view_version_);
  if (request.view_version() != view_version_) {
    reply->set_view_included(true);
    for (const auto& [nid, info] : nodes_) {
      if (info.alive()) *reply->add_nodes() = info;
    }
  }
  return absl::OkStatus();
}

absl::Status NodeTable::Unregister(const std::string& node_id) {
  auto id = ParseId<NodeId>(node_id, "node_id");
  if (!id.ok()) return id.status();
  auto it = nodes_.find(*id);
  if (it == nodes_.end()) return absl::NotFoundError("unknown node");
  if (it->second.alive()) MarkDead(it->second, "unregistered (stopped)");
  return absl::OkStatus();
}

void NodeTable::CheckTimeouts() {
  absl::Time now = options_.clock->Now();
  for (auto& [id, node] : nodes_) {
    if (node.alive() && now - last_seen_[id] > options_.timeout) {
      MarkDead(node, "missed heartbeats for " +
                         absl::FormatDuration(now - last_seen_[id]));
    }
  }
}

void NodeTable::MarkDead(rpc::NodeInfo& node, const std::string& why) {
  NodeId id = *NodeId::FromBinary(node.node_id());
  node.set_alive(false);
  node.clear_available();
  node.clear_pending();
  node.clear_infeasible();
  ++view_version_;
  spdlog::warn("node {} is dead: {}", id.Hex(), why);
  must_register_.erase(id);
  options_.store->Put("nodes", id.Binary(), node.SerializeAsString(), true,
                      MustSave("a node"));
  options_.publisher->Publish(rpc::Event::NODE_DEAD, id.Binary(), why);
  if (options_.on_node_dead) options_.on_node_dead(id);
}

absl::Status NodeTable::Load(const StoreClient::Table& rows) {
  absl::Time now = options_.clock->Now();
  for (const auto& [key, value] : rows) {
    rpc::NodeInfo node;
    auto id = NodeId::FromBinary(key);
    if (!id.ok() || !node.ParseFromString(value)) {
      return absl::DataLossError("a row of the nodes table does not parse");
    }
    if (node.alive()) {
      must_register_.insert(*id);
      last_seen_[*id] = now;
    }
    nodes_[*id] = std::move(node);
  }
  ++view_version_;
  return absl::OkStatus();
}

absl::Status NodeTable::Fenced(const NodeId& id) {
  return absl::FailedPreconditionError(absl::StrCat(
      "node ", id.Hex(),
      " was declared dead: it is fenced (its work was failed over or "
      "restarted elsewhere); start the node again to join as a new one"));
}

std::vector<rpc::NodeInfo> NodeTable::All() const {
  std::vector<rpc::NodeInfo> out;
  for (const auto& [id, node] : nodes_) out.push_back(node);
  return out;
}

size_t NodeTable::alive_count() const {
  size_t n = 0;
  for (const auto& [id, node] : nodes_) n += node.alive();
  return n;
}

}  // namespace loom::gcs
