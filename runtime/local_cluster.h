// runtime/local_cluster.h
//
// Starting and stopping the daemons of one machine: a head (loom-gcs and a
// raylet) or a raylet that joins a head. `loom start` starts them detached
// (their own session, surviving the terminal); loom::Init() with no address
// ties them to the driver with a lifeline, so they exit with it even after
// kill -9.
//
//   auto cluster = StartCluster({.session_root = "/tmp/lt1", .num_cpus = 2});
//   ... cluster->gcs_address, cluster->raylet_address ...
//   StopCluster(*cluster);
#ifndef LOOM_RUNTIME_LOCAL_CLUSTER_H_
#define LOOM_RUNTIME_LOCAL_CLUSTER_H_

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace loom {

struct ClusterOptions {
  std::string session_root;        // empty: DefaultSessionRoot()
  std::string head_address;        // empty: start a head here; else join it
  std::string host = "127.0.0.1";  // advertised; `loom start`: PrimaryAddress
  std::string bind_address;        // empty: host; may be 0.0.0.0
  // The cluster token. A head: empty makes a new one. A joining node: empty
  // takes this process's (rpc::ClusterToken: a head it started, or
  // $LOOM_AUTH_TOKEN). Written 0600 to <session>/auth_token.
  std::string auth_token;
  bool no_auth = false;  // loopback-only clusters: no token at all
  int gcs_port = 0;
  int raylet_port = 0;
  int num_cpus = -1;      // -1: this machine's cores
  int num_gpus = -1;      // -1: the GPUs NVML finds
  double gpu_memory = 0;  // bytes per GPU; 0: NVML's
  int64_t memory = 0;
  int64_t object_store_memory = 0;  // 0: the raylet's default
  std::map<std::string, double> resources;
  std::map<std::string, std::string> labels;
  int64_t node_timeout_ms = 5000;
  // Head: where it keeps its tables ("": memory; redis://HOST:PORT).
  std::string storage;
  // Head: a standby (needs redis:// storage and a gcs_port): only loom-gcs
  // starts here, and serves once the active head stops renewing its lease.
  bool standby = false;
  // Head: its standby heads' HOST:PORT, comma-separated. This node's raylet,
  // the session's address and what joining nodes are told name them after
  // the head, so that all of them follow a takeover.
  std::string standby_addresses;
  // Head: where it writes the Prometheus discovery file ("": its session
  // directory's prometheus_sd.json).
  std::string metrics_sd_file;
  // Head: the job API's port (0: any free one; -1: none, as a private
  // cluster has).
  int dashboard_port = -1;
  int64_t heartbeat_ms = 0;  // 0: the raylet's default
  bool detach = false;       // true for `loom start`
  // The raylet rejoins as a new node when the head fences it, instead of
  // exiting (loom-raylet --restart-on-fence).
  bool restart_on_fence = false;
  // The raylet's memory monitor: --memory-usage-threshold (< 0: the
  // raylet's default, 0.95) and --memory-monitor-limit-bytes (0: none).
  double memory_usage_threshold = -1;
  int64_t memory_monitor_limit_bytes = 0;
  // Head: the Grafana and Prometheus the dashboard links ("": the head's
  // $LOOM_GRAFANA_URL and $LOOM_PROMETHEUS_URL, else none).
  std::string grafana_url;
  std::string prometheus_url;
};

struct ClusterHandle {
  std::string session_dir;
  std::string gcs_address;
  std::string raylet_address;
  std::string auth_token;   // empty with no_auth
  std::vector<pid_t> pids;  // gcs (when started here), raylet (not standby)
  int lifeline_fd = -1;     // held while the daemons should live
};

// Starting a head also makes its token this process's (rpc::SetClusterToken).
absl::StatusOr<ClusterHandle> StartCluster(const ClusterOptions& options);
// SIGTERM to each daemon, SIGKILL after a grace period; closes the lifeline.
void StopCluster(ClusterHandle& cluster);

// The head address a driver with address "auto" joins: $LOOM_ADDRESS, else
// the cluster last started under `session_root`.
absl::StatusOr<std::string> ResolveAutoAddress(const std::string& session_root);
// A raylet on this machine, from the head's node table. Prefers the one
// whose session directory is under `session_root`.
struct LocalRaylet {
  std::string address;      // HOST:PORT
  std::string session_dir;  // its object store is <session_dir>/sockets/store
};
absl::StatusOr<LocalRaylet> FindLocalRaylet(const std::string& gcs_address,
                                            const std::string& session_root);

// Makes this process carry the token of the cluster at `gcs_address`:
// $LOOM_AUTH_TOKEN, else, of the one it has and those of the sessions under
// `session_root` that belong to it (this machine's node), the first the head
// accepts (asked only when there are several). A person's token (roles.h)
// is traded at the head for a credential; Unauthenticated when the head
// does not know it (revoked, or another cluster's).
absl::Status UseTokenOf(const std::string& gcs_address,
                        const std::string& session_root);
// Trades this process's token, when it is a person's, for a credential.
absl::Status TradePersonToken(const std::string& gcs_address);

}  // namespace loom

#endif  // LOOM_RUNTIME_LOCAL_CLUSTER_H_
