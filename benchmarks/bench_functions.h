// benchmarks/bench_functions.h: the remote functions in
// libloom_bench_functions.so, which loom-bench names in
// InitOptions::code_search_path so that workers load it.
#ifndef LOOM_BENCHMARKS_BENCH_FUNCTIONS_H_
#define LOOM_BENCHMARKS_BENCH_FUNCTIONS_H_

#include <cstddef>
#include <cstdint>
#include <string>

// Returns its argument: a task whose cost is all Loom's.
int Noop(int x);

// The value size of the store-call benchmarks: large enough that a Put goes
// into the shared-memory store rather than the owner's memory.
inline constexpr size_t kStoreValueBytes = 100 * 1024;
// Puts `n` values of kStoreValueBytes, each freed before the next; returns n.
int PutMany(int n);

// An actor whose methods cost nothing.
class BenchActor {
 public:
  int Noop(int x) { return x; }
  int WithArg(int x, int arg) { return x + arg; }
};
BenchActor* MakeBenchActor();

// An actor on one GPU in an NCCL group (loom-gpu-bench).
class GpuBenchActor {
 public:
  // loom::collective::InitGroup(world, rank, "nccl", group); returns rank.
  int Join(int world, int rank, std::string group);
  // Seconds that `iters` out-of-place float32 AllReduces of `bytes` take
  // here (each synchronized), after two warm-up calls and a barrier.
  double AllReduceSeconds(int64_t bytes, int iters, std::string group);
  bool Leave(std::string group);
};
GpuBenchActor* MakeGpuBenchActor();

#endif  // LOOM_BENCHMARKS_BENCH_FUNCTIONS_H_
