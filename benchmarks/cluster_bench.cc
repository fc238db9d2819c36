// Cluster start-up costs:
//   worker_start_ms     a worker's spawn-to-registration time, as the raylet
//                       reports it (loom_worker_start_ms, a histogram): a
//                       fork from a running fork server
//   worker_start_with_fork_server_ms
//                       the first worker's, from the fork server's spawn
//                       (exec, dynamic linking) to its registration
//                       (loom_worker_start_with_fork_server_ms)
//   loom_start_head_ms  `loom start --head` until it returns (head + raylet
//                       ready)
//   idle_gcs_rss_mb, idle_raylet_rss_mb
//                       resident memory outside shared memory (VmRSS minus
//                       RssShmem) of an idle head's daemons, 3 s after start
// Each is measured on kRuns fresh clusters; the median is reported.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "benchmarks/bench_cluster.h"
#include "benchmarks/bench_functions.h"
#include "benchmarks/bench_util.h"
#include "loom/loom.h"

namespace loom::bench {
namespace {

constexpr int kNumCpus = 2;

// GET http://127.0.0.1:port/path over a raw socket (HTTP/1.0, so the reply
// is neither chunked nor kept alive). Returns the body; throws on failure.
std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    std::string request =
        "GET " + path +
        " HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n";
    if (write(fd, request.data(), request.size()) ==
        static_cast<ssize_t>(request.size())) {
      char buf[16384];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) response.append(buf, n);
    }
  }
  close(fd);
  size_t body = response.find("\r\n\r\n");
  if (response.compare(0, 9, "HTTP/1.1 ") != 0 &&
      response.compare(0, 9, "HTTP/1.0 ") != 0) {
    throw std::runtime_error("no HTTP reply from 127.0.0.1:" +
                             std::to_string(port));
  }
  if (response.compare(9, 3, "200") != 0 || body == std::string::npos) {
    throw std::runtime_error("GET " + path + ": " +
                             response.substr(0, response.find('\r')));
  }
  return response.substr(body + 4);
}

// The sum over all label sets of a sample named exactly `name` in
// Prometheus text format; -1 when there is none.
double MetricValue(const std::string& text, const std::string& name) {
  std::istringstream lines(text);
  std::string line;
  double total = 0;
  bool found = false;
  while (std::getline(lines, line)) {
    if (line.compare(0, name.size(), name) != 0) continue;
    size_t pos = name.size();
    if (pos < line.size() && line[pos] == '{') pos = line.find('}', pos);
    if (pos == std::string::npos || pos >= line.size()) continue;
    if (line[pos] != ' ' && line[pos] != '}') continue;
    try {
      total += std::stod(line.substr(pos + 1));
      found = true;
    } catch (const std::exception&) {
    }
  }
  return found ? total : -1;
}

// The raylet's metrics port, from "<session>/raylet.ready" ("host:port
// metrics_port").
int MetricsPort(const std::string& session_dir) {
  std::string ready = ReadFile(session_dir + "/raylet.ready");
  size_t space = ready.find(' ');
  if (space == std::string::npos) {
    throw std::runtime_error("no metrics port in " + session_dir +
                             "/raylet.ready");
  }
  return std::stoi(ready.substr(space + 1));
}

struct WorkerStart {
  double fork_ms;         // mean spawn-to-registration of forked workers
  double with_server_ms;  // the fork server's spawn to its first worker's
};

// The mean of histogram `name` in the metrics text; -1 without samples.
double HistogramMean(const std::string& text, const std::string& name) {
  double sum = MetricValue(text, name + "_sum");
  double count = MetricValue(text, name + "_count");
  return count > 0 && sum >= 0 ? sum / count : -1;
}

// One fresh cluster: the mean spawn-to-registration time of its prestarted
// workers, once they have all registered (or after 10 s, of those that
// have), and the fork server's start to its first worker's registration.
WorkerStart WorkerStartOnce() {
  PrivateCluster cluster(kNumCpus);
  if (*Get(Task(Noop).Remote(1)) != 1) throw std::runtime_error("Noop failed");
  int port = MetricsPort(cluster.session_dir());
  std::string text;
  int64_t start = NowNs();
  do {
    text = HttpGet(port, "/metrics");
    if (MetricValue(text, "loom_worker_start_ms_count") >= kNumCpus) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (SecondsSince(start) < 10);
  WorkerStart result{
      HistogramMean(text, "loom_worker_start_ms"),
      HistogramMean(text, "loom_worker_start_with_fork_server_ms")};
  if (result.fork_ms < 0 || result.with_server_ms < 0) {
    throw std::runtime_error(
        "the raylet reports no loom_worker_start_ms samples");
  }
  return result;
}

// One `loom start --head` into a fresh session root, then `loom stop`.
double StartHeadOnce(double /*min_seconds*/) {
  TempDir root;
  std::string loom = SelfDir() + "/loom";
  std::string log = root.path() + "/loom-cli.log";
  int64_t start = NowNs();
  int rc = RunCommand(
      {loom, "start", "--head", "--port", "0", "--session-root", root.path()},
      log);
  double ms = SecondsSince(start) * 1e3;
  int stop_rc = RunCommand({loom, "stop", "--session-root", root.path()}, log);
  if (rc != 0 || stop_rc != 0) {
    throw std::runtime_error("`loom start/stop` failed (" + std::to_string(rc) +
                             ", " + std::to_string(stop_rc) +
                             "): " + ReadFile(log));
  }
  return ms;
}

// VmRSS - RssShmem of a process, in MiB.
double RssOutsideShmMb(int pid) {
  std::istringstream status(
      ReadFile("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  double rss_kb = 0, shmem_kb = 0;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss_kb = std::stod(line.substr(6));
    if (line.rfind("RssShmem:", 0) == 0) shmem_kb = std::stod(line.substr(9));
  }
  return (rss_kb - shmem_kb) / 1024.0;
}

std::vector<Result> RunIdleRss() {
  TempDir root;
  std::string loom = SelfDir() + "/loom";
  std::string log = root.path() + "/loom-cli.log";
  if (RunCommand({loom, "start", "--head", "--port", "0", "--session-root",
                  root.path()},
                 log) != 0) {
    throw std::runtime_error("`loom start` failed: " + ReadFile(log));
  }
  std::this_thread::sleep_for(std::chrono::seconds(3));
  std::istringstream pids(ReadFile(root.path() + "/session_latest/pids"));
  int gcs = 0, raylet = 0;
  pids >> gcs >> raylet;
  double gcs_mb = RssOutsideShmMb(gcs), raylet_mb = RssOutsideShmMb(raylet);
  RunCommand({loom, "stop", "--session-root", root.path()}, log);
  return {{"idle_gcs_rss_mb", gcs_mb, "MiB"},
          {"idle_raylet_rss_mb", raylet_mb, "MiB"}};
}

// These costs are one per cluster, so each run is one cluster and the
// warm-up is one more.
double MedianOfClusters(double (*once)(double)) {
  once(0);
  std::vector<double> values;
  for (int i = 0; i < kRuns; ++i) values.push_back(once(0));
  return Median(values);
}

std::vector<Result> RunWorkerStart() {
  WorkerStartOnce();  // warm-up
  std::vector<double> fork, with_server;
  for (int i = 0; i < kRuns; ++i) {
    WorkerStart once = WorkerStartOnce();
    fork.push_back(once.fork_ms);
    with_server.push_back(once.with_server_ms);
  }
  return {{"worker_start_ms", Median(fork), "ms"},
          {"worker_start_with_fork_server_ms", Median(with_server), "ms"}};
}

std::vector<Result> RunStartHead() {
  return {{"loom_start_head_ms", MedianOfClusters(StartHeadOnce), "ms"}};
}

}  // namespace

void AddClusterBenchmarks(std::vector<Benchmark>* out) {
  out->push_back({{"worker_start_ms", "worker_start_with_fork_server_ms"},
                  RunWorkerStart});
  out->push_back({{"loom_start_head_ms"}, RunStartHead});
  out->push_back({{"idle_gcs_rss_mb", "idle_raylet_rss_mb"}, RunIdleRss});
}

}  // namespace loom::bench
