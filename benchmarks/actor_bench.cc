// Actor call throughput and creation. Ray's ray_perf names measure what
// Ray's workloads do (through the C++ API):
//   1_1_actor_calls_sync            one caller, one actor: call, Get, repeat
//   1_1_actor_calls_async           1000 calls, then one Get of all
//   1_1_actor_calls_concurrent      the same on an actor with
//                                   max_concurrency 16
// and loom_ names where the shape is Loom's own (Ray's callers are actors
// and tasks; these are the driver and its threads):
//   loom_driver_1_n_actor_calls_async
//                                   the driver, kActors actors, 1000 calls
//                                   spread over them, then Get
//   loom_multi_thread_n_n_actor_calls_async
//                                   kActors driver threads, each with its own
//                                   actor, batches of 1000; aggregate
//   loom_multi_thread_n_n_actor_calls_with_arg_async
//                                   the same, each call taking an ObjectRef
//                                   argument (a put value)
//   actor_creation_per_second       kCreate actors created, each answering
//                                   its first call, per second; with
//                                   --actors N,...:
//   actor_creation_per_second_{N}_actors
//                                   N actors on a fresh cluster, once each
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "benchmarks/bench_cluster.h"
#include "benchmarks/bench_functions.h"
#include "benchmarks/bench_util.h"
#include "loom/loom.h"

namespace loom::bench {
namespace {

constexpr int kNumCpus = 2;
constexpr int kBatch = 1000;
constexpr int kActors = 4;
constexpr int kCreate = 20;

using Handle = ActorHandle<BenchActor>;

void Check(int got, int want) {
  if (got != want) {
    throw std::runtime_error("Noop(" + std::to_string(want) + ") returned " +
                             std::to_string(got));
  }
}

// kBatch calls spread over `actors`, then each one got.
int64_t Batch(const std::vector<Handle>& actors) {
  std::vector<ObjectRef<int>> refs;
  refs.reserve(kBatch);
  for (int i = 0; i < kBatch; ++i) {
    refs.push_back(actors[i % actors.size()].Task(&BenchActor::Noop).Remote(i));
  }
  auto values = Get(refs);
  for (int i = 0; i < kBatch; ++i) Check(*values[i], i);
  return kBatch;
}

std::vector<Handle> MakeActors(int n, int max_concurrency = 1) {
  std::vector<Handle> actors;
  for (int i = 0; i < n; ++i) {
    actors.push_back(
        Actor(MakeBenchActor).SetMaxConcurrency(max_concurrency).Remote());
  }
  for (auto& a : actors) Check(*Get(a.Task(&BenchActor::Noop).Remote(1)), 1);
  return actors;
}

std::vector<Result> RunOneToOne() {
  PrivateCluster cluster(kNumCpus);
  auto one = MakeActors(1);
  double sync = MedianOfRuns([&](double s) {
    return RateFor(s, [&] {
      Check(*Get(one[0].Task(&BenchActor::Noop).Remote(7)), 7);
      return int64_t{1};
    });
  });
  double async = MedianOfRuns(
      [&](double s) { return RateFor(s, [&] { return Batch(one); }); });
  auto concurrent = MakeActors(1, 16);
  double conc = MedianOfRuns(
      [&](double s) { return RateFor(s, [&] { return Batch(concurrent); }); });
  auto many = MakeActors(kActors);
  double one_n = MedianOfRuns(
      [&](double s) { return RateFor(s, [&] { return Batch(many); }); });
  return {{"1_1_actor_calls_sync", sync, "calls/s"},
          {"1_1_actor_calls_async", async, "calls/s"},
          {"1_1_actor_calls_concurrent", conc, "calls/s"},
          {"loom_driver_1_n_actor_calls_async", one_n, "calls/s"}};
}

std::vector<Result> RunManyToMany() {
  PrivateCluster cluster(kNumCpus);
  auto actors = MakeActors(kActors);
  double plain = MedianOfRuns([&](double s) {
    return ParallelRate(kActors, s, [&](int c) { return Batch({actors[c]}); });
  });
  ObjectRef<int> arg = Put(1);
  double with_arg = MedianOfRuns([&](double s) {
    return ParallelRate(kActors, s, [&](int c) {
      std::vector<ObjectRef<int>> refs;
      refs.reserve(kBatch);
      for (int i = 0; i < kBatch; ++i) {
        refs.push_back(actors[c].Task(&BenchActor::WithArg).Remote(i, arg));
      }
      auto values = Get(refs);
      for (int i = 0; i < kBatch; ++i) Check(*values[i], i + 1);
      return int64_t{kBatch};
    });
  });
  return {{"loom_multi_thread_n_n_actor_calls_async", plain, "calls/s"},
          {"loom_multi_thread_n_n_actor_calls_with_arg_async", with_arg,
           "calls/s"}};
}

// N actors on a fresh cluster after one warm-up actor, each answering its
// first call: N / seconds. The actors are killed after.
Result CreationAt(int n) {
  PrivateCluster cluster(kNumCpus);
  MakeActors(1);
  int64_t start = NowNs();
  auto actors = MakeActors(n);
  double rate = n / SecondsSince(start);
  for (auto& a : actors) Kill(a);
  return {absl::StrCat("actor_creation_per_second_", n, "_actors"), rate,
          "actors/s"};
}

std::vector<Result> RunCreation() {
  if (!CreationCounts().empty()) {
    std::vector<Result> out;
    for (int n : CreationCounts()) out.push_back(CreationAt(n));
    return out;
  }
  PrivateCluster cluster(kNumCpus);
  std::vector<double> rates;
  for (int run = 0; run < 6; ++run) {  // the first warms up
    int64_t start = NowNs();
    {
      auto actors = MakeActors(kCreate);
      double seconds = SecondsSince(start);
      if (run > 0) rates.push_back(kCreate / seconds);
      for (auto& a : actors) Kill(a);
    }
    // The killed processes' teardown is not creation: let it pass.
    absl::SleepFor(absl::Milliseconds(300));
  }
  return {{"actor_creation_per_second", Median(rates), "actors/s"}};
}

}  // namespace

void AddActorBenchmarks(std::vector<Benchmark>* out) {
  out->push_back(
      {{"1_1_actor_calls_sync", "1_1_actor_calls_async",
        "1_1_actor_calls_concurrent", "loom_driver_1_n_actor_calls_async"},
       RunOneToOne});
  out->push_back({{"loom_multi_thread_n_n_actor_calls_async",
                   "loom_multi_thread_n_n_actor_calls_with_arg_async"},
                  RunManyToMany});
  out->push_back({{"actor_creation_per_second"}, RunCreation});
}

}  // namespace loom::bench
