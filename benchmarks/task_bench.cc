// Task throughput against a private cluster. Ray's ray_perf names measure
// what Ray's workloads do (through the C++ API):
//   single_client_tasks_sync            submit one no-op task, Get it, repeat
//   single_client_tasks_sync_latency    the same as microseconds per task
//   single_client_tasks_async           submit 1000, then one Get of all;
//                                       counted in tasks
//   single_client_tasks_and_get_batch   the same, counted in batches of 1000
// and loom_ names where the shape is Loom's own:
//   loom_single_client_tasks_sync_auth_on / _auth_off / loom_auth_overhead
//                                       the first with and without the
//                                       cluster token: the median of 7
//                                       alternating pairs of clusters
//   loom_single_client_tasks_async_events_on / _events_off /
//   loom_task_events_overhead           single_client_tasks_async with and
//                                       without task events (the state
//                                       API's feed): the median of 7
//                                       alternating pairs of clusters
//   loom_multi_thread_tasks_async       kClients driver threads doing the
//                                       last (Ray's multi_client_tasks_async
//                                       submits from 4 actors instead)
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
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
constexpr int kBatch = 1000;
constexpr int kClients = 4;

std::vector<ObjectRef<int>> SubmitBatch() {
  std::vector<ObjectRef<int>> refs;
  refs.reserve(kBatch);
  for (int i = 0; i < kBatch; ++i) refs.push_back(Task(Noop).Remote(i));
  return refs;
}

void Check(int got, int want) {
  if (got != want) {
    throw std::runtime_error("Noop(" + std::to_string(want) + ") returned " +
                             std::to_string(got));
  }
}

int64_t SyncOne() {
  Check(*Get(Task(Noop).Remote(7)), 7);
  return 1;
}

int64_t GetBatch() {
  auto values = Get(SubmitBatch());
  for (int i = 0; i < kBatch; ++i) Check(*values[i], i);
  return kBatch;
}

std::vector<Result> RunSync() {
  PrivateCluster cluster(kNumCpus);
  double rate = MedianOfRuns([](double s) { return RateFor(s, SyncOne); });
  return {{"single_client_tasks_sync", rate, "tasks/s"},
          {"single_client_tasks_sync_latency", 1e6 / rate, "us"}};
}

// Ray reports one workload twice: per task (async) and per batch.
std::vector<Result> RunAsync() {
  PrivateCluster cluster(kNumCpus);
  double rate = MedianOfRuns([](double s) { return RateFor(s, GetBatch); });
  return {{"single_client_tasks_async", rate, "tasks/s"},
          {"single_client_tasks_and_get_batch", rate / kBatch, "batches/s"}};
}

// The token's cost on the fast path: 7 clusters with it and 7 without,
// alternating, each measured as single_client_tasks_sync is.
std::vector<Result> RunAuthOverhead() {
  constexpr int kPairs = 7;
  std::vector<double> on, off;
  for (int i = 0; i < kPairs; ++i) {
    for (bool no_auth : {false, true}) {
      PrivateCluster cluster(kNumCpus, 0, no_auth);
      RateFor(0.2, SyncOne);  // warm the lease and the channels
      (no_auth ? off : on).push_back(RateFor(1.0, SyncOne));
    }
  }
  double rate_on = Median(on), rate_off = Median(off);
  return {{"loom_single_client_tasks_sync_auth_on", rate_on, "tasks/s"},
          {"loom_single_client_tasks_sync_auth_off", rate_off, "tasks/s"},
          {"loom_auth_overhead", rate_off / rate_on - 1, "fraction"}};
}

// Task events' cost: $LOOM_TASK_EVENTS, read by every core worker of the
// cluster (its daemons and workers inherit it), on and off in turn.
std::vector<Result> RunTaskEventsOverhead() {
  constexpr int kPairs = 7;
  std::vector<double> on, off;
  for (int i = 0; i < kPairs; ++i) {
    // Which goes first alternates too: a cluster's start is slower right
    // after another's shutdown.
    for (bool events : {i % 2 == 0, i % 2 != 0}) {
      setenv("LOOM_TASK_EVENTS", events ? "1" : "0", 1);
      PrivateCluster cluster(kNumCpus);
      RateFor(0.3, GetBatch);  // warm the leases and the channels
      (events ? on : off).push_back(RateFor(kRunSeconds, GetBatch));
      std::fprintf(stderr, "events %s: %.0f tasks/s\n", events ? "on" : "off",
                   (events ? on : off).back());
    }
  }
  unsetenv("LOOM_TASK_EVENTS");
  double rate_on = Median(on), rate_off = Median(off);
  return {{"loom_single_client_tasks_async_events_on", rate_on, "tasks/s"},
          {"loom_single_client_tasks_async_events_off", rate_off, "tasks/s"},
          {"loom_task_events_overhead", rate_off / rate_on - 1, "fraction"}};
}

std::vector<Result> RunMultiClient() {
  PrivateCluster cluster(kNumCpus);
  double rate = MedianOfRuns([](double s) {
    return ParallelRate(kClients, s, [](int) { return GetBatch(); });
  });
  return {{"loom_multi_thread_tasks_async", rate, "tasks/s"}};
}

}  // namespace

void AddTaskBenchmarks(std::vector<Benchmark>* out) {
  out->push_back(
      {{"single_client_tasks_sync", "single_client_tasks_sync_latency"},
       RunSync});
  out->push_back(
      {{"single_client_tasks_async", "single_client_tasks_and_get_batch"},
       RunAsync});
  out->push_back({{"loom_multi_thread_tasks_async"}, RunMultiClient});
  out->push_back(
      {{"loom_single_client_tasks_sync_auth_on",
        "loom_single_client_tasks_sync_auth_off", "loom_auth_overhead"},
       RunAuthOverhead});
  out->push_back({{"loom_single_client_tasks_async_events_on",
                   "loom_single_client_tasks_async_events_off",
                   "loom_task_events_overhead"},
                  RunTaskEventsOverhead});
}

}  // namespace loom::bench
