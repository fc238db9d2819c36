// Remote functions for the examples: built into libloom_examples.so, which
// drivers name in InitOptions::code_search_path so that workers load it.
#include "examples/example_tasks.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "loom/loom.h"

int Square(int x) { return x * x; }

int Add(int a, int b) { return a + b; }

// Nested tasks: each level submits the next and waits for it.
int SumTo(int n) {
  if (n <= 0) return 0;
  return n + *loom::Get(loom::Task(SumTo).Remote(n - 1));
}

std::vector<double> Normalize(std::vector<double> xs) {
  double total = 0;
  for (double x : xs) total += x;
  if (total == 0) throw std::invalid_argument("cannot normalize all zeros");
  for (double& x : xs) x /= total;
  return xs;
}

RunningMean* MakeRunningMean() { return new RunningMean; }

LOOM_REMOTE(Square, Add, SumTo, Normalize, MakeRunningMean, &RunningMean::Add);
