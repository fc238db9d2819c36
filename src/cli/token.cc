// `loom token create|list|revoke` and `loom audit`: people's tokens and the
// head's audit log (roles.h, audit_log.h), both for admins.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "proto/gcs.grpc.pb.h"
#include "src/cli/commands.h"
#include "src/common/auth.h"
#include "src/common/rpc.h"
#include "src/common/tls.h"

namespace loom::cli {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "loom: %s\n", message.c_str());
  return 1;
}

// A refused call's message as the user needs it.
std::string Why(const std::string& addr, const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::UNAUTHENTICATED:
      return absl::StrCat("the head at ", addr,
                          " refused this command's token: pass "
                          "--auth-token-file or set $",
                          kAuthTokenEnv);
    case grpc::StatusCode::UNAVAILABLE:
      return std::string(
          HeadUnreachableError(addr, s.error_message()).message());
    default:
      return s.error_message();
  }
}

std::string Time(int64_t ms) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(ms),
                          absl::LocalTimeZone());
}

}  // namespace

int Token(const TokenArgs& args) {
  auto addr = HeadAddress(args.session_root, args.address);
  if (!addr.ok()) return Fail(std::string(addr.status().message()));
  auto stub = rpc::Gcs::NewStub(rpc::MakeChannel(*addr));
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 10000);
  if (args.command == "create") {
    rpc::CreateTokenRequest req;
    req.set_name(args.name);
    req.set_role(args.role);
    rpc::CreateTokenReply reply;
    grpc::Status s = stub->CreateToken(&ctx, req, &reply);
    if (!s.ok()) return Fail(Why(*addr, s));
    // The token last, alone: `loom token create ... | tail -1` is the token.
    std::printf(
        "Made token \"%s\" with the role %s. It is shown once; "
        "keep it secret (give it as $%s):\n%s\n",
        reply.info().name().c_str(), reply.info().role().c_str(), kAuthTokenEnv,
        reply.token().c_str());
    return 0;
  }
  if (args.command == "revoke") {
    rpc::RevokeTokenRequest req;
    req.set_name(args.name);
    rpc::RevokeTokenReply reply;
    grpc::Status s = stub->RevokeToken(&ctx, req, &reply);
    if (!s.ok()) return Fail(Why(*addr, s));
    std::printf("Revoked token \"%s\".\n", args.name.c_str());
    return 0;
  }
  rpc::ListTokensReply reply;
  grpc::Status s = stub->ListTokens(&ctx, rpc::ListTokensRequest(), &reply);
  if (!s.ok()) return Fail(Why(*addr, s));
  std::printf("%-24s %-10s %-16s %-19s %s\n", "NAME", "ROLE", "TOKEN_ID",
              "CREATED", "CREATED_BY");
  for (const auto& t : reply.tokens()) {
    std::printf("%-24s %-10s %-16s %-19s %s\n", t.name().c_str(),
                t.role().c_str(), t.token_id().c_str(),
                Time(t.created_ms()).c_str(), t.created_by().c_str());
  }
  return 0;
}

int Audit(const AuditArgs& args) {
  auto addr = HeadAddress(args.session_root, args.address);
  if (!addr.ok()) return Fail(std::string(addr.status().message()));
  int64_t since_ms = 0;
  if (!args.since.empty()) {
    absl::Time t;
    absl::Duration ago;
    std::string err;
    if (absl::ParseDuration(args.since, &ago)) {
      since_ms = absl::ToUnixMillis(absl::Now() - ago);
    } else if (absl::ParseTime(absl::RFC3339_full, args.since, &t, &err)) {
      since_ms = absl::ToUnixMillis(t);
    } else {
      return Fail("--since " + args.since +
                  ": give a time (2026-12-04T10:00:00Z) or how long ago "
                  "(30m, 2h)");
    }
  }
  auto stub = rpc::Gcs::NewStub(rpc::MakeChannel(*addr));
  int64_t after = 0;
  for (;;) {
    rpc::Context ctx;
    rpc::SetTimeout(&ctx, 10000);
    rpc::ReadAuditRequest req;
    req.set_after_seq(after);
    req.set_since_ms(since_ms);
    req.set_max(1000);
    rpc::ReadAuditReply reply;
    grpc::Status s = stub->ReadAudit(&ctx, req, &reply);
    if (!s.ok()) return Fail(Why(*addr, s));
    for (const auto& line : reply.lines()) std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    after = reply.last_seq();
    if (reply.lines_size() == 1000) continue;  // more waiting
    if (!args.follow) return 0;
    usleep(500 * 1000);
  }
}

}  // namespace loom::cli
