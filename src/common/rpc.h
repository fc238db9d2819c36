// src/common/rpc.h
//
// The one place that creates gRPC servers and channels. Message-size limits
// are set here explicitly (gRPC's 4 MiB default would refuse transfer
// chunks), and the cluster token is added to every call and checked by
// every server here (roles.h: who may call what), with TLS when the
// process has $LOOM_TLS_DIR. Include only at a
// part's rpc edge.
//
//   rpc::SetClusterToken(token);  // before the first call or server
//   int port = 0;
//   auto server = rpc::StartServer("127.0.0.1", 0, {&service}, &port);
//   auto stub = loom::rpc::Raylet::NewStub(rpc::MakeChannel("127.0.0.1:7000"));
//
// Servers serve through AsyncServer (async_server.h), which refuses a call
// without the token, or from a role below the method's (Admit), before its
// handler runs.
#ifndef LOOM_COMMON_RPC_H_
#define LOOM_COMMON_RPC_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "src/common/roles.h"

namespace loom::rpc {

inline constexpr int kMaxMessageBytes = 512 * 1024 * 1024;
// Keepalive: a channel with calls in flight and nothing received for
// kKeepaliveTime pings its peer, and a peer that does not answer within
// kKeepaliveTimeout is gone (its calls fail UNAVAILABLE). A host that
// vanishes without a TCP reset (cut off, frozen) is noticed so, not after
// TCP's 15 minutes; idle channels send nothing.
inline constexpr int kKeepaliveTimeMs = 10000;
inline constexpr int kKeepaliveTimeoutMs = 5000;
// A channel with no call in flight for this long closes its connection;
// the next call opens a new one.
inline constexpr int kChannelIdleMs = 30000;

// The cluster token: every call made with a Context sends it (metadata
// kTokenMetadata) and every server checks it. Empty: calls carry none and
// servers take every call (`--no-auth`, loopback-only clusters). A process
// not told one takes $LOOM_AUTH_TOKEN when it has it. Thread-safe; a driver
// that joins another cluster sets the new one.
inline constexpr char kTokenMetadata[] = "loom-token";
void SetClusterToken(std::string token);
// What this process's calls carry: the cluster token, or a credential.
std::string ClusterToken();
// A process holding a person's token instead (roles.h): its calls carry
// `credential` (identifying it as `who`), and calls to it are taken from
// the cluster's processes (whose token hashes to `cluster_hash`) and from
// itself.
void UseCredential(std::string credential, Identity who,
                   std::string cluster_hash);
// The head: people's tokens (roles.h). A credential whose token id is not
// among them (revoked) is refused; without a table (raylets, workers) the
// credential's signature is enough.
void SetPeopleTokens(std::shared_ptr<const PeopleTokens> tokens);

// Who `token` is to this process (the cluster, a credential, or on the head
// a person's token); nullopt for a token it does not take.
std::optional<Identity> IdentifyToken(std::string_view token);

// Called for each call refused for want of the token (a daemon counts them
// in loom_rpc_unauthenticated_total).
void OnUnauthenticated(std::function<void()> count);

// What a method needs: its name (for errors and the audit log) and the
// least role that may call it.
struct Need {
  const char* method;
  Role role;
};
// Who called: the identity its token gives, and its address ("ipv4:...").
struct Caller {
  Identity who;
  std::string peer;
};
// Called for each call refused for its role (the head audits them).
void OnDenied(std::function<void(const Caller&, const Need&)> denied);

// The caller of an admitted call; nullopt (the call finished with
// `*refusal`: UNAUTHENTICATED or PERMISSION_DENIED) for one without the
// token or outside its role.
std::optional<Caller> Admit(const grpc::ServerContextBase& ctx,
                            const Need& need, grpc::Status* refusal);

// Binds host:port (0 picks a free port, written to *bound_port). Fails when
// the port is taken: SO_REUSEPORT is off, so two daemons never share one.
// With `also_loopback`, a host that is neither loopback nor 0.0.0.0 is
// joined by 127.0.0.1 on the same port, so local clients can use either.
// Services of asynchronous methods (async_server.h) pass `cq`, which
// receives the server's completion queue.
absl::StatusOr<std::unique_ptr<grpc::Server>> StartServer(
    const std::string& host, int port,
    const std::vector<grpc::Service*>& services, int* bound_port,
    bool also_loopback = false,
    std::unique_ptr<grpc::ServerCompletionQueue>* cq = nullptr);

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address);
// A channel for bulk transfers (object chunks of several MiB): a TCP
// connection of its own (each call makes another, shared with no other
// channel), HTTP/2 frames up to 4 MiB instead of 16 KiB, and a flow-control
// window larger than a chunk, so that the sender never waits for a window
// update in mid-chunk.
std::shared_ptr<grpc::Channel> MakeBulkChannel(const std::string& address);

absl::Status ToAbsl(const grpc::Status& status);
grpc::Status ToGrpc(const absl::Status& status);

// A client call's context: a grpc::ClientContext that carries this
// process's cluster token, if it has one. Every call between Loom processes
// is made with one (tests/CMakeLists.txt: CallsUseRpcContext).
class Context : public grpc::ClientContext {
 public:
  Context();
  // Sends `credential` instead of this process's own, when not empty: a
  // credential of fewer rights, for a peer whose address came from
  // someone who is not the cluster (an object's owner, as its creator
  // named it), so that the cluster token never goes there.
  explicit Context(const std::string& credential);
};

// A deadline `timeout` from now, for a context.
void SetTimeout(grpc::ClientContext* ctx, int64_t timeout_ms);

// Calls that need the head wait for it while it is down or restarting:
// tried again after HeadBackoff (50 ms, doubling, capped at 500 ms) until
// HeadWait() has passed ($LOOM_HEAD_WAIT_MS, default 60 s), then failed
// naming the head. Only UNAVAILABLE (no connection) is waited out.
absl::Duration HeadWait();
absl::Duration HeadBackoff(int tries);
bool HeadUnreachable(const grpc::Status& s);
// The error a call that waited HeadWait() in vain ends with.
grpc::Status HeadGone(const grpc::Status& last);

// Runs call(&ctx) with a fresh Context (timeout_ms each try) until it does
// not fail for want of the head, or HeadWait() has passed.
template <typename Call>
grpc::Status CallHead(int64_t timeout_ms, Call call) {
  absl::Time give_up = absl::Now() + HeadWait();
  for (int tries = 0;; ++tries) {
    Context ctx;
    SetTimeout(&ctx, timeout_ms);
    grpc::Status s = call(&ctx);
    if (!HeadUnreachable(s)) return s;
    if (absl::Now() >= give_up) return HeadGone(s);
    absl::SleepFor(HeadBackoff(tries));
  }
}

}  // namespace loom::rpc

#endif  // LOOM_COMMON_RPC_H_
