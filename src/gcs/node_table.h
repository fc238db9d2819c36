// src/gcs/node_table.h
//
// NodeTable: every node that registered, alive or dead. A node that sends no
// heartbeat for `timeout` is marked dead and that is published; the alive
// nodes and their load form the cluster view that raylets spill back with.
//
//   NodeTable nodes({.store = &store, .publisher = &pub, .clock = clock});
//   nodes.Register(info);
//   nodes.Heartbeat(request, &reply);
//   nodes.CheckTimeouts();  // from a periodic timer
#ifndef LOOM_GCS_NODE_TABLE_H_
#define LOOM_GCS_NODE_TABLE_H_

#include <functional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "proto/gcs.pb.h"
#include "scheduler/resource_set.h"
#include "src/common/clock.h"
#include "src/common/ids.h"
#include "src/common/version.h"
#include "src/gcs/pubsub.h"
#include "src/gcs/storage.h"

namespace loom::gcs {

// Not thread-safe: every method runs on the GCS event loop.
class NodeTable {
 public:
  struct Options {
    StoreClient* store;
    Publisher* publisher;
    Clock* clock;
    absl::Duration timeout = absl::Seconds(5);
    std::function<void(const NodeId&)> on_node_dead;
    // The head's own: a node must run the same protocol and build.
    Version version = ThisVersion();
  };
  explicit NodeTable(Options options) : options_(std::move(options)) {}

  // FailedPrecondition for a node whose `version` differs from the head's
  // (naming both; see CheckNodeVersion), and for a node this head declared
  // dead: it is fenced. A refused node is not listed.
  absl::Status Register(const rpc::NodeInfo& info,
                        const Version& version = ThisVersion());
  // NotFound for a node that is unknown (a restarted head): it must register
  // again. FailedPrecondition for one declared dead: it is fenced, and must
  // stop; its work went elsewhere.
  absl::Status Heartbeat(const rpc::HeartbeatRequest& request,
                         rpc::HeartbeatReply* reply);
  absl::Status Unregister(const std::string& node_id);
  // The load phase of a restarted head: the nodes it had. Dead ones stay
  // dead (fenced); alive ones must register again (their heartbeats are
  // answered NotFound until they do, so they report their objects anew)
  // and are declared dead if they stay silent for `timeout`.
  absl::Status Load(const StoreClient::Table& rows);
  // The head placed work on the node: until its next heartbeat, it is
  // taken to have `available` left.
  void Debit(const std::string& node_id, const ResourceSet& available);
  void CheckTimeouts();

  std::vector<rpc::NodeInfo> All() const;
  size_t alive_count() const;
  absl::Duration timeout() const { return options_.timeout; }

 private:
  void MarkDead(rpc::NodeInfo& node, const std::string& why);
  static absl::Status Fenced(const NodeId& id);

  Options options_;
  absl::flat_hash_map<NodeId, rpc::NodeInfo> nodes_;
  absl::flat_hash_map<NodeId, absl::Time> last_seen_;
  absl::flat_hash_set<NodeId> must_register_;  // loaded alive
  int64_t view_version_ = 1;
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_NODE_TABLE_H_
