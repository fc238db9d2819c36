// runtime/serve/ingress.h
//
// Ingress: loom.serve's HTTP front door on one IP and port. It finds the
// deployment by the longest route prefix, hands the request to the
// process's Router as msgpack [method, path, query, headers, body, prefix],
// and writes the replica's answer [status, content type, headers, body].
// HTTP/1.1 keep-alive; behind the cluster token, an ingress API key, or a
// person's token whose role may submit work (a viewer's gets 403).
//
// What a caller sees:
//   200..  the replica's own answer
//   400    a bad X-Loom-Deadline-Ms or X-Loom-Priority header
//   401    no token or API key (when the cluster has one)
//   403    a person's token whose role may not submit (a viewer's)
//   404    no route for the path
//   413    a body over max_body_bytes
//   500    the replica raised (the error's type and message)
//   502    the replica died during the request (not safe to run again)
//   503    max_queued_requests were waiting: Retry-After says when to retry
//   504    the request's deadline (X-Loom-Deadline-Ms, from arrival) cannot
//          be met: refused at once, not after waiting
// A GET, or a request with an Idempotency-Key header, is run again on
// another replica when its replica dies. A request whose Idempotency-Key
// was seen runs once, through any ingress of the cluster: a retry waits
// for the first's answer, or gets it (marked Idempotent-Replayed) while it
// is kept (10 minutes; this ingress's cache, then the head's KV: see
// shared_idempotency.h).
//
//   Ingress ingress({.router = &router});
//   ingress.SetRoutes({{"/model", "app#Model"}});
//   absl::StatusOr<int> port = ingress.Start("0.0.0.0", 8000);
#ifndef LOOM_RUNTIME_SERVE_INGRESS_H_
#define LOOM_RUNTIME_SERVE_INGRESS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "runtime/serve/idempotency.h"
#include "runtime/serve/router.h"
#include "runtime/serve/shared_idempotency.h"
#include "src/common/http_server.h"

namespace loom::serve {

// Thread-safe.
class Ingress {
 public:
  struct Options {
    Router* router = nullptr;
    std::string token;    // empty: none needed
    std::string api_key;  // empty: none
    int threads = 320;    // connections served at once (keep-alive)
    int64_t max_body_bytes = 64 << 20;
    int retry_after_s = 1;  // the 503's Retry-After
    // Who other bearer tokens are (people's tokens, with their roles:
    // PersonTokens); unset: only the cluster token and the API key.
    std::function<std::optional<Identity>(std::string_view)> identify;
  };
  struct RouteTarget {
    std::string prefix;      // "/model"; "/" takes every path
    std::string deployment;  // "app#Model"
  };
  explicit Ingress(Options options);
  ~Ingress();

  // Replaces the routes; requests in flight finish on the old ones.
  void SetRoutes(std::vector<RouteTarget> routes);
  // Listens on host:port (0: any free port); returns the bound port.
  absl::StatusOr<int> Start(const std::string& host, int port);

 private:
  // `route`: the prefix that matched, for metrics.
  HttpResponse Handle(const HttpRequest& request, std::string* route);
  HttpResponse Forward(const std::string& deployment, ServeRequest call);

  Options options_;
  IdempotencyCache idempotency_{{}};
  SharedIdempotency shared_idempotency_{{}};
  std::unique_ptr<HttpServer> http_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const std::vector<RouteTarget>> routes_ ABSL_GUARDED_BY(mu_);
};

// The msgpack payload a replica's HTTP method receives, and the answer it
// returns; exposed for tests and the C++ deployment API.
std::string PackHttpRequest(const HttpRequest& request,
                            const std::string& prefix);
absl::StatusOr<HttpResponse> UnpackHttpAnswer(const std::string& msgpack);

}  // namespace loom::serve

#endif  // LOOM_RUNTIME_SERVE_INGRESS_H_
