// loom-bench: microbenchmarks with Ray's names (ray_perf), one JSON line per
// result on stdout. Each benchmark warms up, then runs five times for at
// least two seconds each, and reports the median run.
//
//   build/bin/loom-bench                      # everything
//   build/bin/loom-bench --filter grpc        # names containing "grpc"
//   build/bin/loom-bench --list
//   build/bin/loom-bench --filter actor_creation --actors 100,1000,2000
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "benchmarks/bench_util.h"

namespace {

bool Matches(const loom::bench::Benchmark& b, const std::string& filter) {
  for (const auto& name : b.results) {
    if (name.find(filter) != std::string::npos) return true;
  }
  return false;
}

int Usage(const char* argv0) {
  std::fprintf(
      stderr, "usage: %s [--filter NAME] [--list] [--actors N,N,...]\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string filter;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--echo-server") == 0) {
      return loom::bench::RunEchoServer();
    } else if (std::strcmp(argv[i], "--store-writer") == 0) {
      return loom::bench::RunStoreWriter(argc - i - 1, argv + i + 1);
    } else if (std::strcmp(argv[i], "--list") == 0) {
      list = true;
    } else if (std::strcmp(argv[i], "--filter") == 0 && i + 1 < argc) {
      filter = argv[++i];
    } else if (std::strncmp(argv[i], "--filter=", 9) == 0) {
      filter = argv[i] + 9;
    } else if (std::strcmp(argv[i], "--actors") == 0 && i + 1 < argc) {
      for (absl::string_view n : absl::StrSplit(argv[++i], ',')) {
        int count = 0;
        if (!absl::SimpleAtoi(n, &count) || count < 1) return Usage(argv[0]);
        loom::bench::CreationCounts().push_back(count);
      }
    } else {
      return Usage(argv[0]);
    }
  }

  std::vector<loom::bench::Benchmark> benchmarks;
  loom::bench::AddGrpcBenchmarks(&benchmarks);
  loom::bench::AddTaskBenchmarks(&benchmarks);
  loom::bench::AddActorBenchmarks(&benchmarks);
  loom::bench::AddClusterBenchmarks(&benchmarks);
  loom::bench::AddRecoveryBenchmarks(&benchmarks);
  loom::bench::AddStoreBenchmarks(&benchmarks);
  loom::bench::AddStoreFloorBenchmarks(&benchmarks);
  loom::bench::AddSchedulerBenchmarks(&benchmarks);
  loom::bench::AddStateBenchmarks(&benchmarks);

  int failed = 0;
  int ran = 0;
  for (const auto& b : benchmarks) {
    if (!Matches(b, filter)) continue;
    ++ran;
    if (list) {
      for (const auto& name : b.results) std::printf("%s\n", name.c_str());
      continue;
    }
    try {
      for (const auto& r : b.run()) loom::bench::PrintResult(r);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "loom-bench: %s failed: %s\n", b.results[0].c_str(),
                   e.what());
      ++failed;
    }
  }
  if (ran == 0) {
    std::fprintf(stderr, "loom-bench: no benchmark matches '%s'\n",
                 filter.c_str());
    return 1;
  }
  return failed == 0 ? 0 : 1;
}
