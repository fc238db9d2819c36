#include "runtime/local_cluster.h"

#include <signal.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "proto/gcs.grpc.pb.h"
#include "src/common/auth.h"
#include "src/common/net.h"
#include "src/common/process.h"
#include "src/common/rpc.h"
#include "src/common/session.h"
#include "src/common/tls.h"

namespace loom {
namespace {

constexpr absl::Duration kReadyTimeout = absl::Seconds(20);

std::string ResourcesJson(const std::map<std::string, double>& resources) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : resources) {
    parts.push_back(absl::StrCat("\"", k, "\": ", v));
  }
  return "{" + absl::StrJoin(parts, ", ") + "}";
}

// Waits for a daemon's ready file ("host:port metrics_port"); fails early
// with its log when the daemon dies first.
absl::StatusOr<std::string> WaitReady(const std::string& path, pid_t pid,
                                      const std::string& err_log) {
  absl::Time deadline = absl::Now() + kReadyTimeout;
  while (absl::Now() < deadline) {
    auto data = ReadFileToString(path);
    if (data.ok() && !data->empty()) {
      return std::string(*absl::StrSplit(*data, ' ').begin());
    }
    if (!ProcessAlive(pid)) {
      auto log = ReadFileToString(err_log);
      std::string file = path.substr(path.rfind('/') + 1);
      return absl::InternalError(absl::StrCat(
          "the ", file.substr(0, file.find('.')),
          " exited before it was ready: ", log.ok() ? *log : "(no log)"));
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("timed out waiting for ", path));
}

// The token reaches a daemon through its environment (argv is public).
absl::StatusOr<pid_t> SpawnDaemon(const std::string& name,
                                  std::vector<std::string> argv,
                                  const std::string& session_dir,
                                  const ClusterHandle& cluster, int lifeline_fd,
                                  bool no_auth,
                                  std::vector<std::string> env = {}) {
  SpawnOptions spawn;
  spawn.argv = std::move(argv);
  spawn.extra_env = std::move(env);
  if (no_auth) {
    spawn.argv.push_back("--no-auth");
  } else if (!cluster.auth_token.empty()) {
    spawn.extra_env.push_back(
        absl::StrCat(kAuthTokenEnv, "=", cluster.auth_token));
  }
  spawn.stdout_path = absl::StrCat(session_dir, "/logs/", name, ".out");
  spawn.stderr_path = absl::StrCat(session_dir, "/logs/", name, ".err");
  spawn.new_session = true;
  spawn.lifeline_fd = lifeline_fd;
  return Spawn(spawn);
}

// The daemons are up: the session says where its head is, and which
// processes `loom stop` stops (only detached daemons are its to stop; a
// private cluster stops with its driver).
template <typename Fail>
absl::StatusOr<ClusterHandle> Finish(ClusterHandle& cluster,
                                     const ClusterOptions& options,
                                     const std::string& dir, int& child_fd,
                                     Fail& fail) {
  if (child_fd >= 0) close(child_fd);
  child_fd = -1;
  auto s = WriteFileAtomic(dir + "/address", cluster.gcs_address);
  if (s.ok() && options.detach) {
    s = WriteFileAtomic(dir + "/pids", absl::StrJoin(cluster.pids, " "));
  }
  if (!s.ok()) return fail(s);
  return cluster;
}

}  // namespace

absl::StatusOr<ClusterHandle> StartCluster(const ClusterOptions& options) {
  std::string root = options.session_root.empty() ? DefaultSessionRoot()
                                                  : options.session_root;
  auto dir = CreateSessionDir(root);
  if (!dir.ok()) return dir.status();
  ClusterHandle cluster;
  cluster.session_dir = *dir;
  int child_fd = -1;
  if (!options.detach) {
    auto lifeline = MakeLifeline();
    if (!lifeline.ok()) return lifeline.status();
    cluster.lifeline_fd = lifeline->parent_fd;
    child_fd = lifeline->child_fd;
  }
  auto fail = [&](absl::Status s) {
    StopCluster(cluster);
    if (child_fd >= 0) close(child_fd);
    return s;
  };
  std::string bind =
      options.bind_address.empty() ? options.host : options.bind_address;
  if (auto s = CheckListenAddresses(options.host, bind, options.no_auth);
      !s.ok()) {
    return fail(s);
  }
  // A standby given no token takes the active head's from storage.
  bool token_from_storage = options.standby && options.auth_token.empty();
  if (!options.no_auth && !token_from_storage) {
    cluster.auth_token = options.auth_token;
    if (cluster.auth_token.empty()) {
      cluster.auth_token = options.head_address.empty() ? NewClusterToken()
                                                        : rpc::ClusterToken();
    }
    if (cluster.auth_token.empty()) {
      return fail(absl::FailedPreconditionError(absl::StrCat(
          "joining ", options.head_address,
          " needs the cluster's token: pass --auth-token-file (the head's "
          "<session>/auth_token) or set $",
          kAuthTokenEnv,
          "; a cluster started with --no-auth takes --no-auth")));
    }
    auto s = WriteTokenFile(absl::StrCat(*dir, "/", kAuthTokenFile),
                            cluster.auth_token);
    if (!s.ok()) return fail(s);
  }
  if (options.head_address.empty()) rpc::SetClusterToken(cluster.auth_token);

  if (options.head_address.empty()) {
    std::vector<std::string> argv = {FindLoomBinary("loom-gcs"),
                                     "--host",
                                     options.host,
                                     "--bind-address",
                                     bind,
                                     "--port",
                                     absl::StrCat(options.gcs_port),
                                     "--session-dir",
                                     *dir,
                                     "--node-timeout-ms",
                                     absl::StrCat(options.node_timeout_ms)};
    if (options.standby) argv.push_back("--standby");
    argv.insert(argv.end(),
                {"--dashboard-port", absl::StrCat(options.dashboard_port)});
    if (!options.metrics_sd_file.empty()) {
      argv.insert(argv.end(), {"--metrics-sd-file", options.metrics_sd_file});
    }
    if (!options.grafana_url.empty()) {
      argv.insert(argv.end(), {"--grafana-url", options.grafana_url});
    }
    if (!options.prometheus_url.empty()) {
      argv.insert(argv.end(), {"--prometheus-url", options.prometheus_url});
    }
    // Through the environment: argv is public, and the URL may hold a
    // password.
    std::string storage = absl::StrCat(
        "LOOM_STORAGE=", options.storage.empty() ? "memory" : options.storage);
    auto pid = SpawnDaemon("gcs", argv, *dir, cluster, child_fd,
                           options.no_auth, {storage});
    if (!pid.ok()) return fail(pid.status());
    cluster.pids.push_back(*pid);
    // A standby is ready once it waits for the lease.
    auto addr = WaitReady(
        absl::StrCat(*dir, options.standby ? "/gcs.standby" : "/gcs.ready"),
        *pid, *dir + "/logs/gcs.err");
    if (!addr.ok()) return fail(addr.status());
    cluster.gcs_address = *addr;
    if (!options.standby_addresses.empty()) {
      absl::StrAppend(&cluster.gcs_address, ",", options.standby_addresses);
    }
  } else {
    cluster.gcs_address = options.head_address;
  }
  if (options.standby) return Finish(cluster, options, *dir, child_fd, fail);

  std::vector<std::string> argv = {FindLoomBinary("loom-raylet"),
                                   "--host",
                                   options.host,
                                   "--bind-address",
                                   bind,
                                   "--port",
                                   absl::StrCat(options.raylet_port),
                                   "--gcs-address",
                                   cluster.gcs_address,
                                   "--session-dir",
                                   *dir};
  if (options.num_gpus >= 0) {
    argv.insert(argv.end(), {"--num-gpus", absl::StrCat(options.num_gpus)});
  }
  if (options.gpu_memory > 0) {
    argv.insert(argv.end(), {"--gpu-memory", absl::StrCat(options.gpu_memory)});
  }
  if (options.num_cpus >= 0) {
    argv.insert(argv.end(), {"--num-cpus", absl::StrCat(options.num_cpus)});
  }
  if (options.memory > 0) {
    argv.insert(argv.end(), {"--memory", absl::StrCat(options.memory)});
  }
  if (options.object_store_memory > 0) {
    argv.insert(argv.end(), {"--object-store-memory",
                             absl::StrCat(options.object_store_memory)});
  }
  if (!options.resources.empty()) {
    argv.insert(argv.end(), {"--resources", ResourcesJson(options.resources)});
  }
  for (const auto& [k, v] : options.labels) {
    argv.insert(argv.end(), {"--labels", absl::StrCat(k, "=", v)});
  }
  if (options.heartbeat_ms > 0) {
    argv.insert(argv.end(),
                {"--heartbeat-ms", absl::StrCat(options.heartbeat_ms)});
  }
  if (options.restart_on_fence) argv.push_back("--restart-on-fence");
  if (options.memory_usage_threshold >= 0) {
    argv.insert(argv.end(), {"--memory-usage-threshold",
                             absl::StrCat(options.memory_usage_threshold)});
  }
  if (options.memory_monitor_limit_bytes > 0) {
    argv.insert(argv.end(), {"--memory-monitor-limit-bytes",
                             absl::StrCat(options.memory_monitor_limit_bytes)});
  }
  auto pid =
      SpawnDaemon("raylet", argv, *dir, cluster, child_fd, options.no_auth);
  if (!pid.ok()) return fail(pid.status());
  cluster.pids.push_back(*pid);
  auto addr =
      WaitReady(*dir + "/raylet.ready", *pid, *dir + "/logs/raylet.err");
  if (!addr.ok()) return fail(addr.status());
  cluster.raylet_address = *addr;
  return Finish(cluster, options, *dir, child_fd, fail);
}

void StopCluster(ClusterHandle& cluster) {
  // Raylet first (it stops its workers), then the head.
  for (auto it = cluster.pids.rbegin(); it != cluster.pids.rend(); ++it) {
    TerminateProcess(*it, absl::Seconds(5));
  }
  cluster.pids.clear();
  if (cluster.lifeline_fd >= 0) {
    close(cluster.lifeline_fd);
    cluster.lifeline_fd = -1;
  }
}

absl::StatusOr<std::string> ResolveAutoAddress(
    const std::string& session_root) {
  if (const char* env = std::getenv("LOOM_ADDRESS"); env && *env) return env;
  std::string root = session_root.empty() ? DefaultSessionRoot() : session_root;
  auto addr = ReadFileToString(LatestSessionDir(root) + "/address");
  if (!addr.ok()) {
    return absl::NotFoundError(absl::StrCat(
        "no running cluster found under ", root,
        " (start one with `loom start --head`, or set LOOM_ADDRESS)"));
  }
  return *addr;
}

namespace {

// The head's GetClusterStatus, with this process's token. A head with
// standbys may be in the middle of a takeover: wait for one as every call
// that needs the head does. One head that does not answer is more often a
// wrong address: say so at once.
absl::Status HeadStatus(const std::string& gcs_address,
                        rpc::GetClusterStatusReply* reply) {
  auto stub = rpc::Gcs::NewStub(rpc::MakeChannel(gcs_address));
  rpc::GetClusterStatusRequest req;
  auto call = [&](rpc::Context* ctx) {
    return stub->GetClusterStatus(ctx, req, reply);
  };
  if (HeadAddresses(gcs_address).size() > 1) {
    return rpc::ToAbsl(rpc::CallHead(5000, call));
  }
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 5000);
  return rpc::ToAbsl(call(&ctx));
}

}  // namespace

absl::StatusOr<LocalRaylet> FindLocalRaylet(const std::string& gcs_address,
                                            const std::string& session_root) {
  rpc::GetClusterStatusReply reply;
  absl::Status s = HeadStatus(gcs_address, &reply);
  if (absl::IsUnauthenticated(s)) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the head at ", gcs_address,
        " refused this process's cluster token: set $", kAuthTokenEnv,
        " to the token in the head's <session>/", kAuthTokenFile,
        ", or run on a machine whose node joined it"));
  }
  if (!s.ok()) {
    return HeadUnreachableError(gcs_address, std::string(s.message()));
  }
  std::string root = session_root.empty() ? DefaultSessionRoot() : session_root;
  char real[PATH_MAX];
  std::string latest;
  if (realpath(LatestSessionDir(root).c_str(), real)) latest = real;
  // A submitted job's entrypoint attaches to the raylet that started it.
  if (const char* env = std::getenv("LOOM_RAYLET_SESSION_DIR"); env && *env) {
    latest = env;
  }
  // The raylet of this root's latest session, else one on this machine
  // (any address of its own: loopback or an interface's).
  auto local = [&](const rpc::NodeInfo& n) { return IsLocalAddress(n.host()); };
  const rpc::NodeInfo* pick = nullptr;
  std::set<std::string> elsewhere;
  for (const auto& node : reply.nodes()) {
    if (!node.alive()) continue;
    if (!local(node)) {
      elsewhere.insert(node.host());
      continue;
    }
    if (pick == nullptr || node.session_dir() == latest) pick = &node;
  }
  if (pick == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "no raylet of the cluster at ", gcs_address, " runs on this machine (",
        elsewhere.empty()
            ? std::string("the head lists no alive node")
            : "its nodes run on " + absl::StrJoin(elsewhere, ", "),
        "), and a driver works through its own machine's raylet. Start one "
        "here with `loom start --address ",
        gcs_address,
        "` and connect again, or run the driver on a machine of the cluster "
        "(job submission, which runs a driver inside the cluster, is coming "
        "later)"));
  }
  return LocalRaylet{absl::StrCat(pick->host(), ":", pick->raylet_port()),
                     pick->session_dir()};
}

absl::Status TradePersonToken(const std::string& gcs_address) {
  std::string token = rpc::ClusterToken();
  if (!absl::StartsWith(token, kPersonTokenPrefix)) return absl::OkStatus();
  auto stub = rpc::Gcs::NewStub(rpc::MakeChannel(gcs_address));
  rpc::AuthenticateReply reply;
  grpc::Status s = rpc::CallHead(10000, [&](rpc::Context* ctx) {
    return stub->Authenticate(ctx, rpc::AuthenticateRequest(), &reply);
  });
  if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the head at ", gcs_address,
        " does not know this token (revoked, or another cluster's); ask the "
        "cluster's admin for one (`loom token create`)"));
  }
  if (!s.ok()) return rpc::ToAbsl(s);
  auto role = ParseRole(reply.role());
  if (!role.ok()) return role.status();
  rpc::UseCredential(reply.credential(),
                     Identity{reply.name(), *role, TokenId(token)},
                     reply.cluster_hash());
  return absl::OkStatus();
}

absl::Status UseTokenOf(const std::string& gcs_address,
                        const std::string& session_root) {
  if (auto env = TokenFromEnv(); env.ok()) {
    rpc::SetClusterToken(*env);
    return TradePersonToken(gcs_address);
  }
  // The one this process holds (it may have started the head itself, under
  // another root), then this machine's sessions of that head, newest first.
  std::vector<std::string> tokens;
  if (std::string mine = rpc::ClusterToken(); !mine.empty()) {
    tokens.push_back(std::move(mine));
  }
  std::string root = session_root.empty() ? DefaultSessionRoot() : session_root;
  for (std::string& t : FindSessionTokens(root, gcs_address)) {
    if (tokens.empty() || t != tokens.front()) tokens.push_back(std::move(t));
  }
  if (tokens.empty()) return absl::OkStatus();
  // With a choice, the first the head takes: a stopped head's session may
  // name the same address (its port given out again) with a stale token.
  if (tokens.size() > 1) {
    for (const std::string& t : tokens) {
      rpc::SetClusterToken(t);
      rpc::GetClusterStatusReply reply;
      if (!absl::IsUnauthenticated(HeadStatus(gcs_address, &reply))) {
        return absl::OkStatus();
      }
    }
  }
  rpc::SetClusterToken(tokens.front());
  return absl::OkStatus();
}

}  // namespace loom
