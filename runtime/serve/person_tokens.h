// runtime/serve/person_tokens.h
//
// PersonTokens: who a bearer token is at the serve ingress, which runs in a
// worker: it knows the cluster token (and so people's credentials, checked
// by their HMAC) but not people's tokens, which only the head keeps. A
// person's token ("loomtok_...") is traded at the head (Authenticate,
// presenting it) and the answer, yes or no, kept for `keep`: a revoked
// token stops working here within that time.
//
//   PersonTokens people(core.gcs_address());
//   std::optional<Identity> who = people.Identify(bearer);
#ifndef LOOM_RUNTIME_SERVE_PERSON_TOKENS_H_
#define LOOM_RUNTIME_SERVE_PERSON_TOKENS_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/common/roles.h"

namespace loom::serve {

// Thread-safe.
class PersonTokens {
 public:
  explicit PersonTokens(std::string gcs_address,
                        absl::Duration keep = absl::Seconds(10));
  // The cluster's identity for its token, a person's for a credential or a
  // token the head knows; nullopt otherwise (or when the head cannot say).
  std::optional<Identity> Identify(std::string_view token);

 private:
  struct Known {
    std::optional<Identity> who;
    absl::Time until;
  };
  static constexpr size_t kMaxKept = 10000;  // then the cache starts over
  const std::string gcs_address_;
  const absl::Duration keep_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Known> known_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loom::serve

#endif  // LOOM_RUNTIME_SERVE_PERSON_TOKENS_H_
