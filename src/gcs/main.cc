// loom-gcs: the head's global control service.
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "src/common/auth.h"
#include "src/common/daemon.h"
#include "src/common/http_server.h"
#include "src/common/logging.h"
#include "src/common/net.h"
#include "src/common/process.h"
#include "src/common/rpc.h"
#include "src/common/session.h"
#include "src/common/tls.h"
#include "src/common/version.h"
#include "src/gcs/dashboard.h"
#include "src/gcs/gcs_service.h"
#include "src/gcs/job_api.h"
#include "src/gcs/leader_lease.h"

namespace {

// Takes the leader lease (a standby waits for it, telling the session it
// waits: <session>/gcs.standby), and keeps it: a head that finds another
// holding it stops at once (status 71), so that two never serve together.
absl::StatusOr<std::unique_ptr<loom::gcs::LeaderLease>> TakeLeaderLease(
    const std::string& storage, const std::string& holder, absl::Duration ttl,
    bool standby, const std::string& session_dir) {
  auto lease = loom::gcs::LeaderLease::Connect(
      {.storage = storage, .holder = holder, .ttl = ttl});
  if (!lease.ok()) return lease.status();
  if (standby) {
    spdlog::info("standby head {}: waiting for the leader lease", holder);
    if (!session_dir.empty()) {
      auto s = loom::WriteFileAtomic(session_dir + "/gcs.standby", holder);
      if (!s.ok()) spdlog::error("{}", s.ToString());
    }
  }
  auto s = (*lease)->Take(standby, [](const std::string& active) {
    spdlog::info("standby: the active head is {}", active);
  });
  if (!s.ok()) return s;
  spdlog::info("holding the leader lease as {}", (*lease)->id());
  (*lease)->KeepRenewing([](const std::string& other) {
    spdlog::critical(
        "another head ({}) holds the leader lease now: this head stops", other);
    spdlog::shutdown();
    _exit(71);
  });
  return lease;
}

}  // namespace

int main(int argc, char** argv) {
  loom::BlockStopSignals();
  loom::RaiseDescriptorLimit();  // a socket per node and per client
  loom::WatchLifelineFromEnv();
  CLI::App app{"loom-gcs: the Loom head (global control service)"};
  std::string host = "127.0.0.1";
  int port = 0;
  int metrics_port = 0;
  std::string session_dir;
  int64_t node_timeout_ms = 5000;
  std::string bind_address, token_file;
  bool no_auth = false;
  std::string storage;
  bool standby = false;
  int64_t lease_ms = 2000;
  app.add_option("--host", host, "The address this head advertises");
  app.add_option("--bind-address", bind_address,
                 "Address to listen on (default: --host; 0.0.0.0: all)");
  app.add_option("--auth-token-file", token_file,
                 "The cluster token (default: $LOOM_AUTH_TOKEN, else "
                 "<session-dir>/auth_token)");
  app.add_flag("--no-auth", no_auth, "Take calls without a token (loopback)");
  app.add_option("--port", port, "gRPC port (0: pick a free one)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--metrics-port", metrics_port, "Prometheus port (0: free)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--session-dir", session_dir, "Session directory");
  app.add_option("--storage", storage,
                 "Where the head keeps its tables: memory (default) or "
                 "redis://[:PASSWORD@]HOST:PORT[/DB], which outlives the head "
                 "(a password is better given as $LOOM_STORAGE: argv is "
                 "public)")
      ->envname("LOOM_STORAGE");
  app.add_flag("--standby", standby,
               "Wait until the head holding the leader lease in --storage "
               "stops renewing it, then take over (needs redis:// and --port)");
  app.add_option("--leader-lease-ms", lease_ms,
                 "How long the leader lease lasts unrenewed (a head on Redis "
                 "renews it every quarter of this)")
      ->check(CLI::Range(int64_t{200}, int64_t{60000}));
  app.add_option("--node-timeout-ms", node_timeout_ms,
                 "A node silent this long is dead")
      ->check(CLI::Range(int64_t{100}, int64_t{3600000}));
  // What has ended, kept as bounded history (src/gcs/history.h).
  auto history = [&app](const std::string& flag, size_t* limit,
                        const std::string& what, const std::string& env) {
    app.add_option(flag, *limit,
                   what +
                       " the head keeps for `loom list`; past it the "
                       "oldest are erased, from its storage too")
        ->envname(env);
  };
  size_t max_dead_actors = 10000, max_dead_nodes = 1000,
         max_finished_jobs = 10000;
  history("--max-dead-actors", &max_dead_actors, "Dead actors",
          "LOOM_MAX_DEAD_ACTORS");
  history("--max-dead-nodes", &max_dead_nodes, "Dead nodes",
          "LOOM_MAX_DEAD_NODES");
  history("--max-finished-jobs", &max_finished_jobs, "Ended jobs (drivers)",
          "LOOM_MAX_FINISHED_JOBS");
  int64_t max_tasks_per_job = 100000;
  app.add_option("--task-events-max-per-job", max_tasks_per_job,
                 "Task records the head keeps per job for `loom list tasks` "
                 "(past it the oldest ended ones go; summaries still count "
                 "them)")
      ->envname("LOOM_TASK_EVENTS_MAX_PER_JOB")
      ->check(CLI::Range(int64_t{1}, int64_t{100000000}));
  int dashboard_port = 8265;
  app.add_option("--dashboard-port", dashboard_port,
                 "The job submission HTTP API's port (Ray's 8265; 0: any "
                 "free port; -1: none). A port in use is warned about and the "
                 "head runs without it")
      ->check(CLI::Range(-1, 65535));
  std::string grafana_url, prometheus_url;
  app.add_option("--grafana-url", grafana_url,
                 "Your Grafana's URL (http:// or https://): the dashboard "
                 "links it")
      ->envname("LOOM_GRAFANA_URL")
      ->check(loom::gcs::Dashboard::CheckLinkUrl, "an http(s) URL");
  app.add_option("--prometheus-url", prometheus_url,
                 "Your Prometheus' URL (http:// or https://): the dashboard "
                 "links it")
      ->envname("LOOM_PROMETHEUS_URL")
      ->check(loom::gcs::Dashboard::CheckLinkUrl, "an http(s) URL");
  std::string metrics_sd_file;
  app.add_option(
      "--metrics-sd-file", metrics_sd_file,
      "Where the head keeps the Prometheus file_sd list of every "
      "metrics endpoint (default: <session-dir>/prometheus_sd.json)");
  loom::Version version = loom::ThisVersion();
  app.set_version_flag("--version", loom::ToString(version));
  // Hidden: a head that claims another build, for tests of the refusal.
  app.add_option("--build-version-for-testing", version.build)->group("");
  CLI11_PARSE(app, argc, argv);

  loom::InitLogging("gcs", session_dir.empty() ? "" : session_dir + "/logs");
  if (bind_address.empty()) bind_address = host;
  auto token = loom::DaemonToken(token_file, session_dir, no_auth);
  // A head on storage that outlives it may take the cluster's token from
  // there (a head started again elsewhere, without its session directory).
  bool from_storage = !token.ok() && token_file.empty() &&
                      absl::StartsWith(storage, "redis://");
  if (standby && (!absl::StartsWith(storage, "redis://") || port == 0)) {
    std::fprintf(stderr,
                 "loom-gcs: --standby needs --storage redis://... (where the "
                 "active head keeps its tables) and a fixed --port (clients "
                 "must know it before it serves)\n");
    return 2;
  }
  if (!token.ok() && !from_storage) {
    std::fprintf(stderr, "loom-gcs: %s\n",
                 std::string(token.status().message()).c_str());
    return 2;
  }
  if (auto s = loom::CheckListenAddresses(host, bind_address, no_auth);
      !s.ok()) {
    std::fprintf(stderr, "loom-gcs: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  std::string cluster_token = token.ok() ? *token : "";
  loom::rpc::SetClusterToken(cluster_token);
  loom::Metrics metrics;
  auto& refused =
      metrics.Counter("loom_rpc_unauthenticated_total",
                      "Calls refused for want of the cluster token");
  loom::rpc::OnUnauthenticated([&refused] { refused.Increment(); });
  auto mport = metrics.Serve(bind_address, metrics_port);
  if (!mport.ok()) {
    spdlog::error("{}", mport.status().ToString());
    return 1;
  }
  // Heads on Redis hold its leader lease: one at a time serves.
  std::unique_ptr<loom::gcs::LeaderLease> lease;
  if (absl::StartsWith(storage, "redis://")) {
    auto taken =
        TakeLeaderLease(storage, absl::StrCat(host, ":", port),
                        absl::Milliseconds(lease_ms), standby, session_dir);
    if (!taken.ok()) {
      std::fprintf(stderr, "loom-gcs: %s\n",
                   std::string(taken.status().message()).c_str());
      return 1;
    }
    lease = *std::move(taken);
  }
  loom::gcs::GcsServer server(
      {.node_timeout = absl::Milliseconds(node_timeout_ms),
       .version = version,
       .storage = storage,
       .session_dir = session_dir,
       .cluster_token = no_auth ? nullptr : &cluster_token,
       .max_tasks_per_job = max_tasks_per_job,
       .max_dead_actors = max_dead_actors,
       .max_dead_nodes = max_dead_nodes,
       .max_finished_jobs = max_finished_jobs,
       .metrics_sd_file = metrics_sd_file,
       .metrics_target = absl::StrCat(host, ":", *mport)},
      &metrics);
  if (auto s = server.Start(); !s.ok()) {
    spdlog::error("cannot load the head's state: {}", s.ToString());
    std::fprintf(stderr, "loom-gcs: cannot load the head's state: %s\n",
                 std::string(s.message()).c_str());
    return 1;
  }
  // Calls refused for their role go to the audit log.
  loom::rpc::OnDenied([&server](const loom::rpc::Caller& c,
                                const loom::rpc::Need& need) {
    server.audit().Denied(c.who, c.peer, need.method,
                          loom::DeniedMessage(c.who, need.method, need.role));
  });
  if (from_storage) {
    // The cluster's token, taken from storage: this session's too, for the
    // CLI and the daemon's children.
    setenv(loom::kAuthTokenEnv, cluster_token.c_str(), 1);
    if (!session_dir.empty()) {
      auto s = loom::WriteTokenFile(
          absl::StrCat(session_dir, "/", loom::kAuthTokenFile), cluster_token);
      if (!s.ok()) spdlog::error("{}", s.ToString());
    }
    spdlog::info("took the cluster token from storage");
  }
  loom::gcs::GcsService service(&server);
  int bound = 0;
  if (auto s = service.Start(bind_address, port, &bound); !s.ok()) {
    spdlog::error("{}", s.ToString());
    std::fprintf(stderr, "loom-gcs: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  spdlog::info("loom-gcs listening on {}:{}, metrics on {}; {}", host, bound,
               *mport, loom::ToString(version));
  // The job API first: a head is ready once all its ports answer.
  loom::gcs::JobApi job_api(&server);
  loom::gcs::Dashboard::Options dashboard_options;
  dashboard_options.grafana_url = grafana_url;
  dashboard_options.prometheus_url = prometheus_url;
  loom::gcs::Dashboard dashboard(&server, dashboard_options);
  std::unique_ptr<loom::HttpServer> http;
  if (dashboard_port >= 0) {
    loom::HttpServer::Options http_options;
    if (!no_auth) {
      // The cluster token, and people's tokens with their roles.
      http_options.identify = loom::rpc::IdentifyToken;
      http_options.on_denied = [&server](const loom::HttpRequest& req,
                                         const std::string& why) {
        server.audit().Denied(req.caller, req.peer,
                              absl::StrCat(req.method, " ", req.path), why);
      };
    }
    http = std::make_unique<loom::HttpServer>(std::move(http_options));
    job_api.AddRoutes(http.get());
    dashboard.AddRoutes(http.get());
    dashboard.StartHistory();
    auto dport = http->Start(bind_address, dashboard_port);
    if (!dport.ok()) {
      spdlog::warn("{}: the head runs without its job API (--dashboard-port)",
                   std::string(dport.status().message()));
      std::fprintf(stderr, "loom-gcs: warning: %s: no job API\n",
                   std::string(dport.status().message()).c_str());
    } else {
      const auto& tls = loom::ProcessTls();
      spdlog::info("job API on {}://{}:{}",
                   tls.ok() && tls->has_value() ? "https" : "http", host,
                   *dport);
      if (!session_dir.empty()) {
        auto s = loom::WriteFileAtomic(session_dir + "/dashboard_address",
                                       absl::StrCat(host, ":", *dport));
        if (!s.ok()) spdlog::error("{}", s.ToString());
      }
    }
  }
  if (!session_dir.empty()) {
    auto s = loom::WriteFileAtomic(session_dir + "/gcs.ready",
                                   absl::StrCat(host, ":", bound, " ", *mport));
    if (!s.ok()) spdlog::error("{}", s.ToString());
  }
  int sig = loom::WaitForStopSignal();
  spdlog::info("loom-gcs stopping on signal {}", sig);
  if (lease != nullptr) lease->Release();  // a standby need not wait
  service.Shutdown(absl::Milliseconds(500));
  http.reset();  // no handler runs past this
  server.Stop();
  // Skip destructors: the metrics endpoint's threads take a second to wind
  // down, and nothing else needs unwinding.
  spdlog::shutdown();
  _exit(0);
}
