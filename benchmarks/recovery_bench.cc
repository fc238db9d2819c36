// How fast a cluster recovers from losing its head:
//   head_recovery_ms  a head on Redis killed with kill -9 and started again
//                     on its port: from the new head's exec until a named
//                     actor was found and called, a new actor created and
//                     called, and a task ran on every node (two nodes)
// A private Redis (tests/common/redis_server.h) on a free port, two nodes (the
// head's and one more) and a driver; one warm-up restart, then kRuns timed
// ones on the same cluster, median reported.
#include <signal.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "benchmarks/bench_functions.h"
#include "benchmarks/bench_util.h"
#include "loom/loom.h"
#include "runtime/local_cluster.h"
#include "src/common/process.h"
#include "tests/common/free_port.h"
#include "tests/common/redis_server.h"

namespace loom::bench {
namespace {

ClusterHandle Start(ClusterOptions options) {
  auto h = StartCluster(options);
  if (!h.ok()) throw std::runtime_error(h.status().ToString());
  return *h;
}

// Kills the head, starts it again, and times until everything that needs
// the head works again.
double RecoverOnce(ClusterHandle& head, const std::string& storage) {
  kill(head.pids.front(), SIGKILL);
  WaitForExit(head.pids.front(), absl::Seconds(5));
  std::string port = head.gcs_address.substr(head.gcs_address.rfind(':') + 1);
  int64_t start = NowNs();
  auto pid =
      Spawn({.argv = {SelfDir() + "/loom-gcs", "--port", port, "--session-dir",
                      head.session_dir, "--storage", storage}});
  if (!pid.ok()) throw std::runtime_error(pid.status().ToString());
  head.pids.front() = *pid;
  auto found = loom::GetActor<BenchActor>("recovery");
  loom::Get(found.Task(&BenchActor::Noop).Remote(1), 60000);
  auto fresh = loom::Actor(MakeBenchActor).Remote();
  loom::Get(fresh.Task(&BenchActor::Noop).Remote(1), 60000);
  loom::Get(loom::Task(Noop).SetResource("first", 0.01).Remote(1), 60000);
  loom::Get(loom::Task(Noop).SetResource("second", 0.01).Remote(1), 60000);
  double ms = SecondsSince(start) * 1e3;
  loom::Kill(fresh);
  return ms;
}

std::vector<Result> RunHeadRecovery() {
  TempDir root, other;
  auto redis = test::RedisServer::Start();
  if (!redis.ok()) throw std::runtime_error(redis.status().ToString());
  std::string url = (*redis)->url();
  ClusterOptions options;
  options.session_root = root.path();
  options.gcs_port = test::FreePortBelowEphemeralRange();
  options.num_cpus = 2;
  options.resources = {{"first", 1}};
  options.storage = url;
  ClusterHandle head = Start(options);
  ClusterOptions second;
  second.session_root = other.path();
  second.head_address = head.gcs_address;
  second.num_cpus = 1;
  second.resources = {{"second", 1}};
  ClusterHandle node = Start(second);
  std::vector<double> ms;
  try {
    loom::InitOptions init;
    init.address = head.gcs_address;
    init.session_root = root.path();
    const char* lib = std::getenv("LOOM_BENCH_FUNCTIONS_LIB");
    init.code_search_path = {lib && *lib ? lib : LOOM_BENCH_FUNCTIONS_LIB};
    loom::Init(init);
    auto keeper =
        loom::Actor(MakeBenchActor).SetName("recovery").SetDetached().Remote();
    loom::Get(keeper.Task(&BenchActor::Noop).Remote(1), 60000);
    RecoverOnce(head, url);  // warm-up
    for (int i = 0; i < kRuns; ++i) ms.push_back(RecoverOnce(head, url));
    loom::Kill(keeper);
    loom::Shutdown();
  } catch (...) {
    loom::Shutdown();
    StopCluster(node);
    StopCluster(head);
    throw;
  }
  StopCluster(node);
  StopCluster(head);
  return {{"head_recovery_ms", Median(ms), "ms"}};
}

}  // namespace

void AddRecoveryBenchmarks(std::vector<Benchmark>* out) {
  out->push_back({{"head_recovery_ms"}, RunHeadRecovery});
}

}  // namespace loom::bench
