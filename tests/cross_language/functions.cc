// C++ functions and an actor that Python calls in
// tests/python/test_cross_language.py (loom.cross_language), loaded by the
// C++ workers from this library.
#include <cstdint>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "loom/loom.h"
#include "loom/serve.h"

namespace {

int Add(int a, int b) { return a + b; }

std::string Greet(std::string who) { return "hello " + who; }

std::vector<double> Scale(std::vector<double> values, double k) {
  for (double& v : values) v *= k;
  return values;
}

std::map<std::string, int64_t> CountWords(std::vector<std::string> words) {
  std::map<std::string, int64_t> counts;
  for (const auto& w : words) ++counts[w];
  return counts;
}

std::vector<uint8_t> Reverse(std::vector<uint8_t> bytes) {
  return {bytes.rbegin(), bytes.rend()};
}

// A nested value: [name, [x, y], {"ok": true}]; what Python gets back.
std::tuple<std::string, std::vector<int64_t>, std::map<std::string, bool>>
Nested(std::string name) {
  return {name, {1, -2}, {{"ok", true}}};
}

// The tensor's description and the sum of its float64 elements, and
// whether its elements are 64-byte aligned: [dtype, shape, sum, aligned].
std::tuple<std::string, std::vector<int64_t>, double, bool> Describe(
    loom::Tensor t) {
  double sum = 0;
  if (t.dtype() == "float64") {
    const double* p = reinterpret_cast<const double*>(t.data());
    sum = std::accumulate(p, p + t.nbytes() / sizeof(double), 0.0);
  }
  bool aligned = reinterpret_cast<uintptr_t>(t.data()) % 64 == 0;
  return {t.dtype(), t.shape(), sum, aligned};
}

// n float32 elements 0, 1, ..., n-1 in a rows x (n / rows) tensor.
loom::Tensor Iota(int64_t rows, int64_t n) {
  std::vector<float> values(n);
  std::iota(values.begin(), values.end(), 0.0f);
  return loom::Tensor(
      "float32", {rows, n / rows},
      loom::Buffer::Copy(values.data(), values.size() * sizeof(float)));
}

int Fail(std::string why) { throw std::invalid_argument(why); }

class Counter {
 public:
  explicit Counter(int start) : n_(start) {}
  int Increment(int by) {
    n_ += by;
    history_.push_back(n_);
    return n_;
  }
  int Get() const { return n_; }
  std::vector<int64_t> History() const { return history_; }

 private:
  int n_;
  std::vector<int64_t> history_;
};

Counter* MakeCounter(int start) { return new Counter(start); }

}  // namespace

// C++ deployments for tests/python/test_serve_cpp.py (loom/serve.h).
namespace {

struct Scorer {
  explicit Scorer(double bias) : bias(bias) {}
  loom::serve::Response operator()(const loom::serve::Request& r) {
    std::string type = r.headers.count("content-type")
                           ? r.headers.at("content-type")
                           : std::string("none");
    return {r.method == "POST" ? 200 : 405,
            "application/json",
            {{"X-Scorer", "cpp"}},
            "{\"score\": " + std::to_string(r.body.size() + bias) +
                ", \"path\": \"" + r.path + "\", \"type\": \"" + type + "\"}"};
  }
  double bias;
};
Scorer* MakeScorer(double bias) { return new Scorer(bias); }

// Answers each request with the size of the batch it came in.
struct BatchSizer {
  loom::serve::Response operator()(const loom::serve::Request&) {
    return {200, "text/plain", {}, "1"};
  }
  std::vector<loom::serve::Response> Batch(
      const std::vector<loom::serve::Request>& rs) {
    return std::vector<loom::serve::Response>(
        rs.size(), {200, "text/plain", {}, std::to_string(rs.size())});
  }
};
BatchSizer* MakeBatchSizer() { return new BatchSizer(); }

}  // namespace

LOOM_SERVE_DEPLOYMENT(MakeScorer);
LOOM_SERVE_BATCHED_DEPLOYMENT(MakeBatchSizer);

LOOM_REMOTE(Add, Greet, Scale, CountWords, Reverse, Nested, Describe, Iota,
            Fail, MakeCounter, &Counter::Increment, &Counter::Get,
            &Counter::History);
