#include "benchmarks/bench_util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace loom::bench {

double MedianOfRuns(const RunFn& run) {
  run(kWarmupSeconds);
  std::vector<double> values;
  for (int i = 0; i < kRuns; ++i) values.push_back(run(kRunSeconds));
  return Median(values);
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t mid = values.size() / 2;
  if (values.size() % 2 == 1) return values[mid];
  return (values[mid - 1] + values[mid]) / 2;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double SecondsSince(int64_t start_ns) { return (NowNs() - start_ns) / 1e9; }

double RateFor(double min_seconds, const std::function<int64_t()>& batch) {
  int64_t start = NowNs();
  int64_t ops = 0;
  double elapsed = 0;
  do {
    ops += batch();
    elapsed = SecondsSince(start);
  } while (elapsed < min_seconds);
  return ops / elapsed;
}

double ParallelRate(int clients, double min_seconds,
                    const std::function<int64_t(int client)>& batch) {
  std::atomic<int64_t> ops{0};
  std::atomic<bool> failed{false};
  std::string error;
  std::mutex error_mu;
  int64_t start = NowNs();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      try {
        while (!failed && SecondsSince(start) < min_seconds) ops += batch(c);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(error_mu);
        failed = true;
        error = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  double elapsed = SecondsSince(start);
  if (failed) throw std::runtime_error(error);
  return ops / elapsed;
}

void PrintResult(const Result& result) {
  std::printf("{\"name\": \"%s\", \"value\": %.3f, \"unit\": \"%s\"}\n",
              result.name.c_str(), result.value, result.unit.c_str());
  std::fflush(stdout);
}

std::vector<int>& CreationCounts() {
  static std::vector<int> counts;
  return counts;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/lb_XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    throw std::runtime_error("mkdtemp /tmp/lb_XXXXXX failed");
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string SelfExe() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) throw std::runtime_error("cannot read /proc/self/exe");
  return std::string(buf, n);
}

std::string SelfDir() {
  std::string exe = SelfExe();
  return exe.substr(0, exe.rfind('/'));
}

int RunCommand(const std::vector<std::string>& argv,
               const std::string& log_path) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null = open("/dev/null", O_RDONLY);
    if (log >= 0) {
      dup2(log, STDOUT_FILENO);
      dup2(log, STDERR_FILENO);
    }
    if (null >= 0) dup2(null, STDIN_FILENO);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace loom::bench
