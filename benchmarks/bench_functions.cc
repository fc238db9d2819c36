#include "benchmarks/bench_functions.h"

#include "loom/loom.h"

int Noop(int x) { return x; }

BenchActor* MakeBenchActor() { return new BenchActor; }

LOOM_REMOTE(Noop, MakeBenchActor, &BenchActor::Noop, &BenchActor::WithArg);
