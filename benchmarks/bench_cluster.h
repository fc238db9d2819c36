// benchmarks/bench_cluster.h
//
// PrivateCluster: a private Loom cluster (head + one raylet) under a fresh
// session root in /tmp, with the benchmark functions loaded; Init on
// construction, Shutdown and the root removed on destruction.
//
//   PrivateCluster cluster(/*num_cpus=*/2);
//   loom::Get(loom::Task(Noop).Remote(1));
#ifndef LOOM_BENCHMARKS_BENCH_CLUSTER_H_
#define LOOM_BENCHMARKS_BENCH_CLUSTER_H_

#include <cstdlib>
#include <string>

#include "benchmarks/bench_util.h"
#include "loom/loom.h"

namespace loom::bench {

class PrivateCluster {
 public:
  // Throws loom::Error when the cluster cannot start.
  explicit PrivateCluster(int num_cpus, int64_t object_store_memory = 0,
                          bool no_auth = false) {
    loom::InitOptions options;
    options.num_cpus = num_cpus;
    options.no_auth = no_auth;
    options.object_store_memory = object_store_memory;
    // The build's library, unless the environment names a copy of it.
    const char* lib = std::getenv("LOOM_BENCH_FUNCTIONS_LIB");
    options.code_search_path = {lib && *lib ? lib : LOOM_BENCH_FUNCTIONS_LIB};
    options.session_root = root_.path();
    loom::Init(options);
  }
  ~PrivateCluster() { loom::Shutdown(); }
  PrivateCluster(const PrivateCluster&) = delete;
  PrivateCluster& operator=(const PrivateCluster&) = delete;

  // The session directory of this cluster.
  std::string session_dir() const { return root_.path() + "/session_latest"; }

 private:
  TempDir root_;  // outlives the cluster: removed after Shutdown
};

}  // namespace loom::bench

#endif  // LOOM_BENCHMARKS_BENCH_CLUSTER_H_
