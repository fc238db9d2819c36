// examples/example_tasks.h: the remote functions in libloom_examples.so.
#ifndef LOOM_EXAMPLES_EXAMPLE_TASKS_H_
#define LOOM_EXAMPLES_EXAMPLE_TASKS_H_

#include <vector>

int Square(int x);
int Add(int a, int b);
int SumTo(int n);
std::vector<double> Normalize(std::vector<double> xs);

// An actor: a running mean that keeps its state between calls.
class RunningMean {
 public:
  double Add(double x) {
    sum_ += x;
    return sum_ / ++count_;
  }

 private:
  double sum_ = 0;
  int count_ = 0;
};
RunningMean* MakeRunningMean();

#endif  // LOOM_EXAMPLES_EXAMPLE_TASKS_H_
