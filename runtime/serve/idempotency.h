// runtime/serve/idempotency.h
//
// IdempotencyCache: what makes a request with an Idempotency-Key run once.
// The first request with a key runs; one that arrives while it runs waits
// for its answer; one that arrives later gets the kept answer, until it
// expires (ttl) or is pushed out (max_entries, oldest first). Only answers
// below 500 are kept, and no stream: the next attempt runs again.
//
//   IdempotencyCache cache({});
//   auto begun = cache.Begin(key);
//   if (begun.kept) return *begun.kept;       // a replay
//   HttpResponse r = Run();
//   cache.Finish(key, r);
//
// Thread-safe.
#ifndef LOOM_RUNTIME_SERVE_IDEMPOTENCY_H_
#define LOOM_RUNTIME_SERVE_IDEMPOTENCY_H_

#include <cstddef>
#include <deque>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/common/clock.h"
#include "src/common/http_server.h"

namespace loom::serve {

// What a kept answer is sent with: the header that marks a replay (added
// once), and whether an answer may be kept at all (below 500, no stream).
HttpResponse Replayed(HttpResponse kept);
inline bool Keepable(const HttpResponse& r) {
  return r.status < 500 && !r.stream;
}

class IdempotencyCache {
 public:
  struct Options {
    absl::Duration ttl = absl::Minutes(10);
    size_t max_entries = 100'000;
    Clock* clock = Clock::Real();
  };
  explicit IdempotencyCache(Options options) : options_(options) {}

  struct Begun {
    std::optional<HttpResponse> kept;  // set: answer with this
  };
  // Blocks while another request with the key runs.
  Begun Begin(const std::string& key);
  // The first request's answer (every Begin must be followed by Finish
  // unless it returned a kept answer).
  void Finish(const std::string& key, const HttpResponse& response);

 private:
  struct Entry {
    bool running = true;
    HttpResponse response;
    absl::Time expires;
  };
  void Trim() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Options options_;
  absl::Mutex mu_;
  absl::CondVar changed_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);  // kept, oldest first
};

}  // namespace loom::serve

#endif  // LOOM_RUNTIME_SERVE_IDEMPOTENCY_H_
