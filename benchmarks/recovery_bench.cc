// How fast a cluster recovers from losing its head:
//   head_recovery_ms  a head on Redis killed with kill -9 and started again
//                     on its port: from the new head's exec until a named
//                     actor was found and called, a new actor created and
//                     called, and a task ran on every node (two nodes)
// A private Redis (Debian's redis-server) on a free port, two nodes (the
// head's and one more) and a driver; one warm-up restart, then kRuns timed
// ones on the same cluster, median reported.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "benchmarks/bench_functions.h"
#include "benchmarks/bench_util.h"
#include "loom/loom.h"
#include "runtime/local_cluster.h"
#include "src/common/process.h"

namespace loom::bench {
namespace {

// A port free now and below the ephemeral range (so that the head can take
// it again after a restart without a client's socket holding it).
int FreeFixedPort() {
  for (int port = 20000 + getpid() % 5000; port < 32000; port += 7) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (free) return port;
  }
  throw std::runtime_error("no free port below 32000");
}

// The first `name` on $PATH.
std::string OnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/bin", ':')) {
    std::string full = absl::StrCat(dir, "/", name);
    if (access(full.c_str(), X_OK) == 0) return full;
  }
  throw std::runtime_error(name + " is not on $PATH (scripts/install-deps.sh)");
}

// redis-server on a free port, killed on destruction.
class Redis {
 public:
  explicit Redis(const std::string& dir) : port_(FreeFixedPort()) {
    auto pid =
        Spawn({.argv = {OnPath("redis-server"), "--port", std::to_string(port_),
                        "--bind", "127.0.0.1", "--save", "", "--appendonly",
                        "no", "--dir", dir},
               .stdout_path = dir + "/redis.log"});
    if (!pid.ok()) throw std::runtime_error(pid.status().ToString());
    pid_ = *pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  ~Redis() {
    kill(pid_, SIGKILL);
    WaitForExit(pid_, absl::Seconds(5));
  }
  std::string url() const { return absl::StrCat("redis://127.0.0.1:", port_); }

 private:
  int port_;
  pid_t pid_ = -1;
};

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
  Redis redis(root.path());
  ClusterOptions options;
  options.session_root = root.path();
  options.gcs_port = FreeFixedPort();
  options.num_cpus = 2;
  options.resources = {{"first", 1}};
  options.storage = redis.url();
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
    RecoverOnce(head, redis.url());  // warm-up
    for (int i = 0; i < kRuns; ++i)
      ms.push_back(RecoverOnce(head, redis.url()));
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
