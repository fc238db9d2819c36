// A C++ driver that calls Python (loom/cross_language.h) on a private
// cluster, for tests/python/test_cross_language.py: each result on a line
// "name=value", then "done"; exit 1 with the error on stderr otherwise.
//
//   loom-xlang-driver PYTHON MODULE_DIR
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "loom/loom.h"

namespace {

template <typename T>
std::string Join(const std::vector<T>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ",";
    out += std::to_string(v[i]);
  }
  return out;
}

void Run() {
  using loom::PyFunction;
  auto sum = loom::Task(PyFunction<int>{"xlang_module", "add"}).Remote(2, 40);
  std::cout << "add=" << *loom::Get(sum) << std::endl;

  // Values of every shared kind, and a ref argument.
  auto word = loom::Put(std::string("loom"));
  auto echo = loom::Task(PyFunction<std::map<std::string, std::string>>{
                             "xlang_module", "types_of"})
                  .Remote(7, 2.5, word, std::vector<int>{1, 2},
                          std::map<std::string, int>{{"a", 1}}, true);
  auto types = loom::Get(echo);
  for (const auto& [k, v] : *types) {
    std::cout << "type." << k << "=" << v << std::endl;
  }

  // numpy arrays: a Tensor in, a Tensor back (large: in the store).
  std::vector<double> values(50000, 1.5);
  loom::Tensor t("float64", {250, 200},
                 loom::Buffer::Copy(values.data(), values.size() * 8));
  auto total =
      loom::Task(PyFunction<double>{"xlang_module", "total"}).Remote(t);
  std::cout << "total=" << *loom::Get(total) << std::endl;
  loom::ObjectRef<loom::Tensor> made =
      loom::Task(PyFunction<loom::Tensor>{"xlang_module", "make_array"})
          .Remote(300, 400);
  std::shared_ptr<loom::Tensor> arr = loom::Get(made);
  const float* f = reinterpret_cast<const float*>(arr->data());
  std::cout << "array=" << arr->dtype() << ":" << Join(arr->shape()) << ":"
            << f[0] << ":" << f[300 * 400 - 1] << std::endl;

  // An actor.
  auto counter =
      loom::Actor(loom::PyActorClass{"xlang_module", "Counter"}).Remote(10);
  counter.Task(loom::PyActorMethod<int>{"incr"}).Remote(5);
  auto n = counter.Task(loom::PyActorMethod<int>{"incr"}).Remote(1);
  std::cout << "counter=" << *loom::Get(n) << std::endl;

  // A Python error: its type, message and traceback.
  try {
    loom::Get(loom::Task(PyFunction<int>{"xlang_module", "fail"})
                  .Remote(std::string("bad input")));
    std::cout << "fail=none" << std::endl;
  } catch (const loom::TaskError& e) {
    std::string what = e.what();
    bool tb = what.find("Traceback") != std::string::npos;
    bool type = what.find("ValueError") != std::string::npos;
    bool msg = what.find("bad input") != std::string::npos;
    std::cout << "fail=" << type << msg << tb << std::endl;
  }
  try {
    loom::Get(loom::Task(PyFunction<int>{"xlang_module", "nope"}).Remote());
    std::cout << "missing=none" << std::endl;
  } catch (const loom::Error& e) {
    std::string what = e.what();
    std::cout << "missing="
              << (what.find("nope") != std::string::npos ? "named" : what)
              << std::endl;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: loom-xlang-driver PYTHON MODULE_DIR\n");
    return 2;
  }
  try {
    loom::InitOptions options;
    options.num_cpus = 2;
    options.python_executable = argv[1];
    options.python_path = {argv[2]};
    loom::Init(options);
    Run();
    loom::Shutdown();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  std::cout << "done" << std::endl;
  return 0;
}
