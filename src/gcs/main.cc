// loom-gcs: the head's global control service.
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "src/common/auth.h"
#include "src/common/daemon.h"
#include "src/common/logging.h"
#include "src/common/net.h"
#include "src/common/process.h"
#include "src/common/rpc.h"
#include "src/common/session.h"
#include "src/common/version.h"
#include "src/gcs/gcs_service.h"

int main(int argc, char** argv) {
  loom::BlockStopSignals();
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
                 "redis://[:PASSWORD@]HOST:PORT[/DB], which outlives the head");
  app.add_option("--node-timeout-ms", node_timeout_ms,
                 "A node silent this long is dead")
      ->check(CLI::Range(int64_t{100}, int64_t{3600000}));
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
  loom::gcs::GcsServer server(
      {.node_timeout = absl::Milliseconds(node_timeout_ms),
       .version = version,
       .storage = storage,
       .session_dir = session_dir,
       .cluster_token = no_auth ? nullptr : &cluster_token},
      &metrics);
  if (auto s = server.Start(); !s.ok()) {
    spdlog::error("cannot load the head's state: {}", s.ToString());
    std::fprintf(stderr, "loom-gcs: cannot load the head's state: %s\n",
                 std::string(s.message()).c_str());
    return 1;
  }
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
  auto grpc_server =
      loom::rpc::StartServer(bind_address, port, {&service}, &bound,
                             /*also_loopback=*/true);
  if (!grpc_server.ok()) {
    spdlog::error("{}", grpc_server.status().ToString());
    std::fprintf(stderr, "loom-gcs: %s\n",
                 std::string(grpc_server.status().message()).c_str());
    return 1;
  }
  spdlog::info("loom-gcs listening on {}:{}, metrics on {}; {}", host, bound,
               *mport, loom::ToString(version));
  if (!session_dir.empty()) {
    auto s = loom::WriteFileAtomic(session_dir + "/gcs.ready",
                                   absl::StrCat(host, ":", bound, " ", *mport));
    if (!s.ok()) spdlog::error("{}", s.ToString());
  }
  int sig = loom::WaitForStopSignal();
  spdlog::info("loom-gcs stopping on signal {}", sig);
  (*grpc_server)
      ->Shutdown(std::chrono::system_clock::now() +
                 std::chrono::milliseconds(500));
  server.Stop();
  // Skip destructors: the metrics endpoint's threads take a second to wind
  // down, and nothing else needs unwinding.
  spdlog::shutdown();
  _exit(0);
}
