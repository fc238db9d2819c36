#include "tests/cluster/test_cluster.h"

#include <signal.h>

#include "gtest/gtest.h"
#include "loom/loom.h"
#include "src/common/ids.h"
#include "src/common/process.h"

namespace loom::test {

std::string Cluster::Node::id_hex() const {
  auto id = NodeId::FromBinary(id_);
  return id.ok() ? id->Hex() : "";
}

Cluster::Cluster(NodeOptions head) {
  nodes_.push_back(std::make_unique<Node>());
  status_ = Start(*nodes_.back(), head, true);
}

Cluster::~Cluster() {
  if (connected_) loom::Shutdown();
  // The head last: the others unregister from it.
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
    if (!(*it)->removed_) StopCluster((*it)->handle_);
  }
}

const std::string& Cluster::address() const {
  return nodes_.front()->handle_.gcs_address;
}

absl::Status Cluster::Start(Node& node, const NodeOptions& options,
                            bool is_head) {
  ClusterOptions o;
  o.session_root = node.root();
  if (!is_head) o.head_address = address();
  o.num_cpus = options.num_cpus;
  o.resources = options.resources;
  o.labels = options.labels;
  o.object_store_memory = options.object_store_memory;
  o.raylet_port = options.raylet_port;
  o.heartbeat_ms = options.heartbeat_ms;
  o.restart_on_fence = options.restart_on_fence;
  o.gcs_port = options.gcs_port;
  o.node_timeout_ms = options.node_timeout_ms;
  o.storage = options.storage;
  o.standby_addresses = options.standby_addresses;
  auto started = StartCluster(o);
  if (!started.ok()) {
    node.removed_ = true;
    return started.status();
  }
  node.handle_ = *started;
  node.raylet_pid_ = node.handle_.pids.back();
  // The raylet wrote its ready file once registered: the head lists it.
  auto status = ClusterStatus(address());
  if (!status.ok()) return status.status();
  for (const auto& n : status->nodes()) {
    if (n.alive() && n.pid() == node.raylet_pid_) node.id_ = n.node_id();
  }
  if (node.id_.empty()) {
    return absl::InternalError("the head does not list the new node");
  }
  return absl::OkStatus();
}

Cluster::Node* Cluster::AddNode(NodeOptions options) {
  if (!status_.ok()) {
    ADD_FAILURE() << "AddNode: the head did not start: " << status_;
    return nullptr;
  }
  nodes_.push_back(std::make_unique<Node>());
  Node* node = nodes_.back().get();
  absl::Status s = Start(*node, options, false);
  if (!s.ok()) {
    ADD_FAILURE() << "AddNode: " << s;
    return nullptr;
  }
  return node;
}

void Cluster::RemoveNode(Node* node, bool graceful) {
  if (node == nullptr || node->removed_) return;
  node->removed_ = true;
  if (!graceful) kill(node->raylet_pid_, SIGKILL);
  StopCluster(node->handle_);
}

bool Cluster::WaitForNodes(absl::Duration timeout) {
  return WaitUntil(
      [&] {
        auto status = ClusterStatus(address());
        if (!status.ok()) return false;
        for (Node* node : nodes()) {
          bool alive = false;
          for (const auto& n : status->nodes()) {
            alive |= n.alive() && n.pid() == node->raylet_pid_;
          }
          if (!alive) return false;
        }
        return true;
      },
      timeout);
}

std::vector<Cluster::Node*> Cluster::nodes() {
  std::vector<Node*> out;
  for (auto& n : nodes_) {
    if (!n->removed_) out.push_back(n.get());
  }
  return out;
}

void Cluster::Connect() {
  InitOptions options;
  options.address = address();
  options.session_root = head().root();
  options.code_search_path = {TestLib()};
  loom::Init(options);
  connected_ = true;
}

}  // namespace loom::test
