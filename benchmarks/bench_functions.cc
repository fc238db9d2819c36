#include "benchmarks/bench_functions.h"

#include "loom/loom.h"

int Noop(int x) { return x; }

LOOM_REMOTE(Noop);
