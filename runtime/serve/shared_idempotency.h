// runtime/serve/shared_idempotency.h
//
// SharedIdempotency: the cluster's record of Idempotency-Keys, in the
// head's key-value store (namespace "serve_idempotency"), so that a retry
// that reaches another node's ingress runs once too. The first ingress
// claims the key atomically (put-if-absent) with a running marker that
// lapses after `lease` (an ingress that died while running it does not
// block the key for ever); the answer replaces the marker until `ttl`.
// An ingress that finds the marker waits for the answer. Answers of 500
// and up, streams and bodies over max_kept_bytes are not kept. When the
// head cannot be reached, the request runs (the ingress's own cache still
// holds its retries). The serve controller deletes lapsed keys.
//
//   SharedIdempotency shared({});
//   auto claim = shared.Begin(key);
//   if (claim.kept) return *claim.kept;
//   HttpResponse r = Run();
//   shared.Finish(key, r);
//
// Thread-safe (each call is its own KV calls).
#ifndef LOOM_RUNTIME_SERVE_SHARED_IDEMPOTENCY_H_
#define LOOM_RUNTIME_SERVE_SHARED_IDEMPOTENCY_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "src/common/http_server.h"

namespace loom::serve {

inline constexpr char kIdempotencyNamespace[] = "serve_idempotency";

class SharedIdempotency {
 public:
  struct Options {
    absl::Duration ttl = absl::Minutes(10);
    absl::Duration lease = absl::Minutes(2);
    absl::Duration poll = absl::Milliseconds(20);
    size_t max_kept_bytes = 1 << 20;
  };
  explicit SharedIdempotency(Options options) : options_(options) {}

  struct Claim {
    std::optional<HttpResponse> kept;  // set: answer with this
  };
  // Blocks while another ingress runs the key (up to its lease).
  Claim Begin(const std::string& key);
  // After Begin returned no kept answer.
  void Finish(const std::string& key, const HttpResponse& response);
  // Deletes every lapsed record (the controller calls it now and then);
  // how many.
  static int Sweep();

 private:
  Options options_;
};

}  // namespace loom::serve

#endif  // LOOM_RUNTIME_SERVE_SHARED_IDEMPOTENCY_H_
