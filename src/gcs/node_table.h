// src/gcs/node_table.h
//
// NodeTable: every node that registered, alive or dead. A node that sends no
// heartbeat for `timeout` is marked dead and that is published; the alive
// nodes and their load form the cluster view that raylets spill back with.
// Each change of a node's state or resources takes the next view version;
// a heartbeat that names the version its node holds is answered with the
// nodes changed since (a delta), so that a busy cluster of N nodes sends
// about N changed nodes per heartbeat period, not N per heartbeat. The
// alive nodes' parsed resources are kept for the scheduler, which reads
// them in place. Dead nodes are kept as bounded history (the last
// `max_dead`); older ones are erased here and from storage, their ids kept
// (fenced, in the table "fenced_nodes", so across head restarts too) so
// that they cannot join again under the same id.
//
//   NodeTable nodes({.store = &store, .publisher = &pub, .clock = clock});
//   nodes.Register(info);
//   nodes.Heartbeat(request, &reply);
//   nodes.CheckTimeouts();  // from a periodic timer
//   scheduler.Pick(nodes.alive(), demand, strategy);
#ifndef LOOM_GCS_NODE_TABLE_H_
#define LOOM_GCS_NODE_TABLE_H_

#include <functional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "proto/gcs.pb.h"
#include "scheduler/cluster_scheduler.h"
#include "scheduler/resource_set.h"
#include "src/common/clock.h"
#include "src/common/ids.h"
#include "src/common/version.h"
#include "src/gcs/history.h"
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
    size_t max_dead = 1000;  // dead nodes kept (loom-gcs --max-dead-nodes)
  };
  explicit NodeTable(Options options);

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
  // and are declared dead if they stay silent for `timeout`. `fenced`: the
  // ids of erased dead nodes ("fenced_nodes": id -> erased at, ms).
  absl::Status Load(const StoreClient::Table& rows,
                    const StoreClient::Table& fenced = {});
  static constexpr char kFencedTable[] = "fenced_nodes";
  // The head placed `used` on the alive node: until its next heartbeat it
  // counts against what the node has available (unless it does not fit).
  void Debit(const std::string& node_id, const ResourceSet& used);
  // Declares dead the alive nodes silent for longer than `timeout`; returns
  // when the next could be (InfiniteFuture with none alive).
  absl::Time CheckTimeouts();
  // The head could not hear heartbeats for up to `stall` (its loop stalled
  // within that stretch): each alive node's silence is counted as that
  // much shorter, never past now.
  void Excuse(absl::Duration stall);

  // The alive nodes, as the scheduler reads them (current, not a copy).
  const std::vector<NodeState>& alive() const { return alive_; }
  // Null for a node not (or no longer) in the table.
  const rpc::NodeInfo* Find(const std::string& node_id) const;
  // Every node in the table, alive and dead; `fn` must not change it.
  void ForEach(const std::function<void(const rpc::NodeInfo&)>& fn) const {
    for (const auto& [id, node] : nodes_) fn(node.info);
  }
  size_t size() const { return nodes_.size(); }
  size_t alive_count() const { return alive_.size(); }
  absl::Duration timeout() const { return options_.timeout; }
  int64_t erased_dead() const { return dead_.erased(); }
  size_t max_dead() const { return dead_.limit(); }

 private:
  struct Node {
    rpc::NodeInfo info;
    absl::Time last_seen;
    int64_t changed = 0;  // the view version of its last change
  };
  void MarkDead(Node& node, const std::string& why);
  void Erase(const NodeId& id);
  // Remembers an erased node's id, here and in storage (and forgets the
  // oldest past kMaxFenced).
  void Fence(const NodeId& id, int64_t erased_ms);
  static absl::Status Fenced(const NodeId& id);
  // The node changed: it takes the next view version, and its entry in
  // alive_ follows its info (added, updated or removed).
  void Changed(Node& node);
  void FillView(int64_t since, rpc::HeartbeatReply* reply) const;

  Options options_;
  absl::flat_hash_map<NodeId, Node> nodes_;
  std::vector<NodeState> alive_;
  absl::flat_hash_map<std::string, size_t> alive_index_;  // binary id
  absl::flat_hash_set<NodeId> must_register_;             // loaded alive
  BoundedHistory<NodeId> dead_;
  // Erased dead nodes: still refused. At most kMaxFenced, oldest forgotten.
  static constexpr size_t kMaxFenced = 100000;
  absl::flat_hash_set<NodeId> fenced_;
  BoundedHistory<NodeId> fenced_order_;
  // Versions start at the head's start time (microseconds), so that a view
  // from an earlier head is never taken for one of this head's.
  int64_t view_version_;
  int64_t first_version_;  // views older than this get the whole view
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_NODE_TABLE_H_
