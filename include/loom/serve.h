// include/loom/serve.h
//
// A C++ model served by loom.serve: a class whose call operator answers an
// HTTP request, registered with its factory like an actor. Its replicas
// run on C++ workers; the request path (ingress, router, queues, batching,
// deadlines) is the same as for Python deployments.
//
//   struct Scorer {
//     explicit Scorer(double bias) : bias(bias) {}
//     loom::serve::Response operator()(const loom::serve::Request& r) {
//       return {200, "text/plain", {}, std::to_string(r.body.size() + bias)};
//     }
//     double bias;
//   };
//   Scorer* MakeScorer(double bias) { return new Scorer(bias); }
//   LOOM_SERVE_DEPLOYMENT(MakeScorer);
//
// Deployed by factory name, with the library in code_search_path:
//   python: serve.run(serve.cpp_deployment("MakeScorer").bind(0.5))
//   config: {"applications": [{"cpp_factory": "MakeScorer", ...}]}
// (docs/serving.md). A class may also answer a whole batch at once, for
// a deployment with a batch config: define
//   std::vector<Response> Batch(const std::vector<Request>&)
// and register with LOOM_SERVE_BATCHED_DEPLOYMENT(MakeScorer).
#ifndef LOOM_SERVE_H_
#define LOOM_SERVE_H_

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "loom/remote.h"
#include "loom/serialization.h"

namespace loom::serve {

struct Request {
  std::string method;  // GET, POST...
  std::string path;    // the whole path, route prefix included
  std::string query;   // after '?', as sent
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string route_prefix;
  MSGPACK_DEFINE_ARRAY(method, path, query, headers, body, route_prefix);
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  MSGPACK_DEFINE_ARRAY(status, content_type, headers, body);
};

namespace internal {

// What the serve controller and router call on a C++ replica (the names
// Python replicas answer to, loom/serve/_replica.py).
template <typename T, bool kBatched>
class Replica {
 public:
  explicit Replica(T* user) : user_(user) {}
  bool initialize() { return true; }
  bool check_health() { return true; }
  Response _loom_serve_http(const Request& r) { return (*user_)(r); }
  std::vector<Response> _loom_serve_http_batch(const std::vector<Request>& rs) {
    if constexpr (kBatched) {
      return user_->Batch(rs);
    } else {
      std::vector<Response> out;
      for (const Request& r : rs) out.push_back((*user_)(r));
      return out;
    }
  }
  int prepare_for_shutdown(double) { return 0; }
  // Never returns while the process lives: the controller learns of the
  // replica's death when this call fails.
  bool wait_until_stopped() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [] { return false; });
    return true;
  }

 private:
  std::unique_ptr<T> user_;
  std::mutex mu_;
  std::condition_variable cv_;
};

template <auto Factory, bool kBatched, typename F = decltype(Factory)>
struct DeploymentOf;
template <auto Factory, bool kBatched, typename T, typename... A>
struct DeploymentOf<Factory, kBatched, T* (*)(A...)> {
  using R = Replica<T, kBatched>;
  static R* Make(A... args) { return new R(Factory(args...)); }
  // The replica's methods under the factory's name, so that two
  // deployments in one library do not collide.
  static bool Register(const char* factory_name) {
    using loom::internal::RegisterOne;
    std::string f = factory_name;
    RegisterOne(f, &Make);
    RegisterOne(f + "::initialize", &R::initialize);
    RegisterOne(f + "::check_health", &R::check_health);
    RegisterOne(f + "::_loom_serve_http", &R::_loom_serve_http);
    RegisterOne(f + "::_loom_serve_http_batch", &R::_loom_serve_http_batch);
    RegisterOne(f + "::prepare_for_shutdown", &R::prepare_for_shutdown);
    RegisterOne(f + "::wait_until_stopped", &R::wait_until_stopped);
    return true;
  }
};

}  // namespace internal
}  // namespace loom::serve

#define LOOM_SERVE_DEPLOYMENT(factory)                                  \
  static const bool LOOM_CONCAT(loom_serve_registered_, __LINE__) =     \
      ::loom::serve::internal::DeploymentOf<&factory, false>::Register( \
          #factory)
#define LOOM_SERVE_BATCHED_DEPLOYMENT(factory)                         \
  static const bool LOOM_CONCAT(loom_serve_registered_, __LINE__) =    \
      ::loom::serve::internal::DeploymentOf<&factory, true>::Register( \
          #factory)

#endif  // LOOM_SERVE_H_
