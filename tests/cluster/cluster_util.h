// tests/cluster/cluster_util.h
//
// Helpers for cluster tests: private temp session roots, running the CLI,
// reading metrics, finding processes, polling with a deadline.
#ifndef LOOM_TESTS_CLUSTER_CLUSTER_UTIL_H_
#define LOOM_TESTS_CLUSTER_CLUSTER_UTIL_H_

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/gcs.pb.h"
#include "runtime/local_cluster.h"
#include "src/common/process.h"
#include "tests/common/free_port.h"

namespace loom::test {

// A fresh short directory under /tmp, removed (with everything under it)
// when the object goes away.
class TempRoot {
 public:
  TempRoot();
  ~TempRoot();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string BinDir();
std::string TestLib();

struct CommandResult {
  int exit_code;
  std::string output;  // stdout and stderr
};
CommandResult RunCommand(const std::string& command);

absl::StatusOr<std::string> HttpGet(int port, const std::string& path);
// Sum of the samples whose name (with labels, if given) matches exactly.
double MetricValue(const std::string& text, const std::string& name);
// The raylet's metrics port, from <session_dir>/raylet.ready.
int RayletMetricsPort(const std::string& session_dir);
double RayletMetric(const std::string& session_dir, const std::string& name);

// Kills the cluster's head (kill -9) and starts another on its port (start
// the head on FreePortBelowEphemeralRange()) and session directory, whose
// token it reuses, with its job API on any free port and `args` added (e.g.
// --storage); returns its pid. The new head exits with this process.
void KillHead(const ClusterHandle& cluster);
absl::StatusOr<pid_t> StartHeadAgain(const ClusterHandle& cluster,
                                     std::vector<std::string> args = {});
absl::StatusOr<pid_t> RestartHead(const ClusterHandle& cluster,
                                  std::vector<std::string> args = {});

// Processes whose command line contains `needle`.
std::vector<pid_t> PidsMatching(const std::string& needle);
// Whether `p` lies in this process's mapping of an object store arena.
bool InStoreMapping(const void* p);
// Polls `condition` until it holds (true) or `timeout` passes (false).
bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout);
// Polls `condition` for `period`: whether it held at every check. For "did
// not happen" checks: make `period` a multiple of the time in which the
// thing would have happened (a control's, or the daemon's period).
bool StaysTrue(const std::function<bool()>& condition, absl::Duration period);

// A head alone (loom-gcs, no raylet: a machine where no node runs) in a new
// session under `root`, tied to this process by a lifeline; `extra_args` go
// to loom-gcs. Its new token is written to the session and made this
// process's (rpc::SetClusterToken), as StartCluster does. StopCluster stops
// it.
absl::StatusOr<ClusterHandle> StartHeadOnly(
    const std::string& root, const std::vector<std::string>& extra_args = {});

absl::StatusOr<rpc::GetClusterStatusReply> ClusterStatus(
    const std::string& gcs_address);
int CountNodes(const rpc::GetClusterStatusReply& status, bool alive);
// A new job's number from the head (waiting for it while it is down, as a
// driver does; any head of a list), as a driver gets one.
absl::StatusOr<uint32_t> NewJob(const std::string& gcs_address);

}  // namespace loom::test

#endif  // LOOM_TESTS_CLUSTER_CLUSTER_UTIL_H_
