// runtime/serve/person_tokens.cc
#include "runtime/serve/person_tokens.h"

#include <memory>

#include "absl/strings/match.h"
#include "proto/gcs.grpc.pb.h"
#include "spdlog/spdlog.h"
#include "src/common/rpc.h"

namespace loom::serve {
namespace {

constexpr int64_t kAuthenticateTimeoutMs = 5000;

// Asks the head who `token` is, presenting it as the caller's token.
// NotFound: the head does not know it.
absl::StatusOr<Identity> AskHead(const std::string& gcs_address,
                                 const std::string& token) {
  auto stub = rpc::Gcs::NewStub(rpc::MakeChannel(gcs_address));
  grpc::ClientContext ctx;  // not rpc::Context: it would add ours
  ctx.AddMetadata(rpc::kTokenMetadata, token);
  rpc::SetTimeout(&ctx, kAuthenticateTimeoutMs);
  rpc::AuthenticateReply reply;
  grpc::Status s = stub->Authenticate(&ctx, rpc::AuthenticateRequest(), &reply);
  if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    return absl::NotFoundError("the head does not know this token");
  }
  if (!s.ok()) return rpc::ToAbsl(s);
  auto role = ParseRole(reply.role());
  if (!role.ok()) return role.status();
  return Identity{reply.name(), *role, TokenId(token)};
}

}  // namespace

PersonTokens::PersonTokens(std::string gcs_address, absl::Duration keep)
    : gcs_address_(std::move(gcs_address)), keep_(keep) {}

std::optional<Identity> PersonTokens::Identify(std::string_view token) {
  if (auto who = rpc::IdentifyToken(token)) return who;
  absl::string_view given(token.data(), token.size());
  if (!absl::StartsWith(given, kPersonTokenPrefix) || gcs_address_.empty()) {
    return std::nullopt;
  }
  std::string key = HashToken(given);
  absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    auto it = known_.find(key);
    if (it != known_.end() && it->second.until > now) return it->second.who;
  }
  auto asked = AskHead(gcs_address_, std::string(token));
  if (!asked.ok() && !absl::IsNotFound(asked.status())) {
    spdlog::warn("serve ingress: cannot ask the head about a token: {}",
                 asked.status().ToString());
    return std::nullopt;  // not kept: the head may answer next time
  }
  std::optional<Identity> who;
  if (asked.ok()) who = *asked;
  absl::MutexLock lock(&mu_);
  if (known_.size() >= kMaxKept) known_.clear();
  known_[key] = Known{who, now + keep_};
  return who;
}

}  // namespace loom::serve
