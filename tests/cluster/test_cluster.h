// tests/cluster/test_cluster.h
//
// Cluster: several nodes on this machine joined into one cluster, for C++
// cluster tests; the C++ twin of loom.cluster_utils.Cluster. Each node is a
// real raylet (the head also runs loom-gcs) started as `loom start` starts
// them, under a session root of its own, and tied to this process by a
// lifeline: its daemons exit with the test even after a crash.
//
//   Cluster cluster({.node_timeout_ms = 1000});      // the head, 1 CPU
//   ASSERT_TRUE(cluster.status().ok()) << cluster.status();
//   Cluster::Node* b = cluster.AddNode({.resources = {{"pool", 1}}});
//   ASSERT_NE(b, nullptr);
//   cluster.Connect();                // loom::Init, on the head's raylet
//   ... b->raylet_pid(), b->id_hex(), b->root() ...
//   cluster.RemoveNode(b);            // its raylet and workers stop
//   EXPECT_TRUE(cluster.WaitForNodes());
//
// Going away, it shuts down a driver it connected, then stops every node,
// the head last. Not thread-safe: one test thread uses it.
#ifndef LOOM_TESTS_CLUSTER_TEST_CLUSTER_H_
#define LOOM_TESTS_CLUSTER_TEST_CLUSTER_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runtime/local_cluster.h"
#include "tests/cluster/cluster_util.h"

namespace loom::test {

// What a node starts with. The defaults suit tests: 1 CPU, any ports.
struct NodeOptions {
  int num_cpus = 1;
  std::map<std::string, double> resources;
  std::map<std::string, std::string> labels;
  int64_t object_store_memory = 0;  // 0: the raylet's default
  int raylet_port = 0;              // 0: any free port
  int64_t heartbeat_ms = 0;         // 0: the raylet's default
  bool restart_on_fence = false;
  // The head's only.
  int gcs_port = 0;  // 0: any free port
  int64_t node_timeout_ms = 5000;
  std::string storage;            // "": in memory; redis://HOST:PORT
  std::string standby_addresses;  // HOST:PORT,...: nodes follow a takeover
};

class Cluster {
 public:
  class Node {
   public:
    // Its daemons' pids (the raylet last) and lifeline; a test that reaps
    // the raylet itself pops its pid, so that nothing signals it again.
    ClusterHandle& handle() { return handle_; }
    // Its own session root: every process of the node mentions it.
    const std::string& root() const { return root_.path(); }
    const std::string& session_dir() const { return handle_.session_dir; }
    pid_t raylet_pid() const { return raylet_pid_; }
    // The head's id for the node when it joined (binary, and hex).
    const std::string& id() const { return id_; }
    std::string id_hex() const;
    bool removed() const { return removed_; }

   private:
    friend class Cluster;
    TempRoot root_;
    ClusterHandle handle_;
    pid_t raylet_pid_ = -1;
    std::string id_;
    bool removed_ = false;
  };

  // Starts the head: loom-gcs and a raylet. status() says how it went.
  explicit Cluster(NodeOptions head = {});
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const absl::Status& status() const { return status_; }
  // The head's HOST:PORT.
  const std::string& address() const;
  Node& head() { return *nodes_.front(); }

  // Starts a raylet that joins the head; returns once the head lists it.
  // nullptr (and a test failure naming why) if it cannot start.
  Node* AddNode(NodeOptions options = {});
  // Stops the node's raylet and workers: SIGTERM (it unregisters: dead at
  // once), or with graceful = false SIGKILL (dead after the node timeout).
  void RemoveNode(Node* node, bool graceful = true);
  // Whether the head lists every node not removed as alive within `timeout`.
  bool WaitForNodes(absl::Duration timeout = absl::Seconds(10));
  // Every node added and not removed, the head first.
  std::vector<Node*> nodes();

  // loom::Init as a driver of this cluster, attached to the head's raylet.
  void Connect();

 private:
  absl::Status Start(Node& node, const NodeOptions& options, bool is_head);

  absl::Status status_;
  std::vector<std::unique_ptr<Node>> nodes_;
  bool connected_ = false;
};

}  // namespace loom::test

#endif  // LOOM_TESTS_CLUSTER_TEST_CLUSTER_H_
