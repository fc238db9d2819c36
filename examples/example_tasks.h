// examples/example_tasks.h: the remote functions in libloom_examples.so.
#ifndef LOOM_EXAMPLES_EXAMPLE_TASKS_H_
#define LOOM_EXAMPLES_EXAMPLE_TASKS_H_

#include <vector>

int Square(int x);
int Add(int a, int b);
int SumTo(int n);
std::vector<double> Normalize(std::vector<double> xs);

#endif  // LOOM_EXAMPLES_EXAMPLE_TASKS_H_
