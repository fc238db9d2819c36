// loom-example: a small driver. With no arguments it starts a private
// cluster; with --address HOST:PORT (or "auto") it joins a running one.
//
//   build/bin/loom-example --address auto
#include <cstring>
#include <iostream>
#include <numeric>

#include "examples/example_tasks.h"
#include "loom/loom.h"

int main(int argc, char** argv) {
  loom::InitOptions options;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--address") == 0) options.address = argv[i + 1];
  }
  options.code_search_path = {LOOM_EXAMPLES_LIB};
  loom::Init(options);

  // Fan out 100 tasks, gather the results.
  std::vector<loom::ObjectRef<int>> refs;
  for (int i = 0; i < 100; ++i) refs.push_back(loom::Task(Square).Remote(i));
  int total = 0;
  for (const auto& v : loom::Get(refs)) total += *v;
  std::cout << "sum of squares 0..99 = " << total << "\n";

  // Refs as arguments: resolved before the task runs.
  auto a = loom::Task(Add).Remote(20, 1);
  auto b = loom::Task(Add).Remote(a, a);
  std::cout << "(20 + 1) * 2 = " << *loom::Get(b) << "\n";

  // Nested tasks.
  std::cout << "SumTo(5) via nested tasks = "
            << *loom::Get(loom::Task(SumTo).Remote(5)) << "\n";

  // Remote exceptions come back typed.
  try {
    loom::Get(loom::Task(Normalize).Remote(std::vector<double>{0, 0}));
  } catch (const loom::TaskError& e) {
    std::cout << "caught remote " << e.remote_type() << ": "
              << e.remote_message() << "\n";
  }
  // Large values go through the node's shared-memory object store; a tensor
  // comes back as a view of that memory, not a copy.
  std::vector<float> weights(1 << 20, 0.5f);
  auto tensor_ref = loom::Put(loom::Tensor(
      "float32", {1024, 1024},
      loom::Buffer::Copy(weights.data(), weights.size() * sizeof(float))));
  std::shared_ptr<loom::Tensor> tensor = loom::Get(tensor_ref);
  std::cout << "4 MiB tensor " << tensor->shape()[0] << "x"
            << tensor->shape()[1]
            << " read in place from shared memory, w[0] = "
            << reinterpret_cast<const float*>(tensor->data())[0] << "\n";
  // An actor keeps state between calls, which run in order.
  auto mean = loom::Actor(MakeRunningMean).Remote();
  std::vector<loom::ObjectRef<double>> means;
  for (double x : {2.0, 4.0, 9.0}) {
    means.push_back(mean.Task(&RunningMean::Add).Remote(x));
  }
  std::cout << "running mean of 2, 4, 9 = " << *loom::Get(means.back()) << "\n";
  loom::Shutdown();
  return total == 328350 ? 0 : 1;
}
