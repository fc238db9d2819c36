// The head's scheduler alone: decisions per second over 100 simulated
// nodes (no RPC), with mixed demands and strategies, each decision taken
// from the chosen node's free resources until it is full, then returned.
#include <random>

#include "benchmarks/bench_util.h"
#include "scheduler/cluster_scheduler.h"

namespace loom::bench {
namespace {

ResourceSet R(std::map<std::string, double> m) {
  return *ResourceSet::FromMap(m);
}

std::vector<Result> RunDecisions() {
  constexpr int kNodes = 100;
  std::mt19937 rng(7);
  std::vector<NodeState> nodes;
  for (int i = 0; i < kNodes; ++i) {
    ResourceSet total = R({{"CPU", 16 + (i % 4) * 16},
                           {"GPU", static_cast<double>(i % 8 == 0 ? 8 : 0)},
                           {"memory", 64e9}});
    std::string id(16, '\0');
    id[0] = static_cast<char>(i);
    nodes.push_back(NodeState{id, total, total, {{"zone", i % 2 ? "a" : "b"}}});
  }
  std::vector<ResourceSet> demands = {R({{"CPU", 1}}), R({{"CPU", 4}}),
                                      R({{"CPU", 1}, {"GPU", 1}}),
                                      R({{"CPU", 2}, {"memory", 4e9}})};
  std::vector<Strategy> strategies(4);
  strategies[1].kind = Strategy::kSpread;
  strategies[2].labels = {{"zone", "a"}};
  strategies[3].kind = Strategy::kNodeAffinity;
  strategies[3].node_id = nodes[17].node_id;
  strategies[3].soft = true;
  ClusterScheduler scheduler;
  std::vector<std::pair<int, ResourceSet>> placed;
  auto batch = [&]() -> int64_t {
    for (int i = 0; i < 1000; ++i) {
      const ResourceSet& d = demands[rng() % demands.size()];
      int n = scheduler.Pick(nodes, d, strategies[rng() % strategies.size()]);
      if (n >= 0) {
        nodes[n].available.Subtract(d);
        placed.emplace_back(n, d);
      }
      if (n < 0 || placed.size() > 2000) {  // full: everything finishes
        for (auto& [node, r] : placed) nodes[node].available.Add(r);
        placed.clear();
      }
    }
    return 1000;
  };
  double rate =
      MedianOfRuns([&](double seconds) { return RateFor(seconds, batch); });
  return {{"global_scheduler_decisions_per_second", rate, "decisions/s"}};
}

}  // namespace

void AddSchedulerBenchmarks(std::vector<Benchmark>* out) {
  out->push_back({{"global_scheduler_decisions_per_second"}, RunDecisions});
}

}  // namespace loom::bench
