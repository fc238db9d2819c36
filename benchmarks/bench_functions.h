// benchmarks/bench_functions.h: the remote functions in
// libloom_bench_functions.so, which loom-bench names in
// InitOptions::code_search_path so that workers load it.
#ifndef LOOM_BENCHMARKS_BENCH_FUNCTIONS_H_
#define LOOM_BENCHMARKS_BENCH_FUNCTIONS_H_

// Returns its argument: a task whose cost is all Loom's.
int Noop(int x);

// An actor whose methods cost nothing.
class BenchActor {
 public:
  int Noop(int x) { return x; }
  int WithArg(int x, int arg) { return x + arg; }
};
BenchActor* MakeBenchActor();

#endif  // LOOM_BENCHMARKS_BENCH_FUNCTIONS_H_
