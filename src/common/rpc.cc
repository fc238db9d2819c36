#include "src/common/rpc.h"

#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "src/common/auth.h"
#include "src/common/net.h"
#include "src/common/tls.h"

namespace loom::rpc {

namespace {

// What a process sends and accepts. Read on every call, on both ends: a
// snapshot shared under a lock, replaced whole, never changed.
struct Auth {
  std::string send;     // what this process's calls carry
  std::string cluster;  // the cluster token, when this process holds it
  // Else (a process holding a credential) the cluster token's hash, and
  // the credential's identity.
  std::string cluster_hash;
  std::optional<Identity> own;
  std::shared_ptr<const PeopleTokens> people;  // the head's; else null
};

struct TokenState {
  absl::Mutex mu;
  bool set ABSL_GUARDED_BY(mu) = false;
  std::shared_ptr<const Auth> auth ABSL_GUARDED_BY(mu) =
      std::make_shared<const Auth>();
  std::function<void()> on_refused ABSL_GUARDED_BY(mu);
  std::function<void(const Caller&, const Need&)> on_denied ABSL_GUARDED_BY(mu);
};

TokenState& Tokens() {
  static auto* state = new TokenState;  // never freed: threads may read late
  return *state;
}

std::shared_ptr<const Auth> CurrentAuth() {
  TokenState& t = Tokens();
  absl::MutexLock lock(&t.mu);
  if (!t.set) {
    auto env = TokenFromEnv();
    if (env.ok()) t.auth = std::make_shared<const Auth>(Auth{*env, *env});
    t.set = true;
  }
  return t.auth;
}

// Replaces the snapshot with change(a copy of it).
template <typename Change>
void ChangeAuth(Change change) {
  CurrentAuth();  // settles $LOOM_AUTH_TOKEN first
  TokenState& t = Tokens();
  absl::MutexLock lock(&t.mu);
  Auth next = *t.auth;
  change(next);
  t.auth = std::make_shared<const Auth>(std::move(next));
}

// Who `token` is, to a process whose snapshot is `auth`.
std::optional<Identity> IdentityOf(const Auth& auth, absl::string_view token) {
  Identity cluster{kClusterName, Role::kAdmin, ""};
  if (!auth.cluster.empty()) {
    if (ConstantTimeEquals(token, auth.cluster)) return cluster;
    std::optional<Identity> who = ReadCredential(auth.cluster, token);
    if (who.has_value()) {
      // The head: only while the token it was given for is not revoked.
      if (auth.people != nullptr && !auth.people->contains(who->token_id)) {
        return std::nullopt;
      }
      return who;
    }
    if (auth.people == nullptr) return std::nullopt;
    std::string hash = HashToken(token);
    auto it = auth.people->find(hash.substr(0, 16));
    if (it == auth.people->end() ||
        !ConstantTimeEquals(hash, it->second.hash)) {
      return std::nullopt;
    }
    return it->second.who;
  }
  if (auth.own.has_value() && ConstantTimeEquals(token, auth.send)) {
    return auth.own;
  }
  if (!auth.cluster_hash.empty() &&
      ConstantTimeEquals(HashToken(token), auth.cluster_hash)) {
    return cluster;
  }
  return std::nullopt;
}

}  // namespace

namespace {

// Mutual TLS with $LOOM_TLS_DIR's files when set: a client must present a
// certificate from the cluster's CA.
std::shared_ptr<grpc::ServerCredentials> ServerCredentials() {
  const auto& tls = ProcessTls();
  if (!tls.ok() || !tls->has_value()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = (*tls)->ca;
  options.pem_key_cert_pairs.push_back({(*tls)->key, (*tls)->cert});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials() {
  const auto& tls = ProcessTls();
  if (!tls.ok() || !tls->has_value()) {
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = (*tls)->ca;
  options.pem_private_key = (*tls)->key;
  options.pem_cert_chain = (*tls)->cert;
  return grpc::SslCredentials(options);
}

// Milliseconds from $name when it is a number of at least `least`, else
// `otherwise`.
int64_t EnvMs(const char* name, int64_t least, int64_t otherwise) {
  const char* env = std::getenv(name);
  int64_t ms = 0;
  if (env != nullptr && absl::SimpleAtoi(env, &ms) && ms >= least) return ms;
  return otherwise;
}

// A server closes a connection that carried no call for this long (GOAWAY;
// the client connects again for its next call): gRPC 1.51's client idle
// timeout (kChannelIdleMs) stops working once a channel has reconnected,
// and each open connection costs the server ~20 KiB and both ends a
// keepalive timer. $LOOM_SERVER_IDLE_MS (at least 1000) overrides it.
int ServerConnectionIdleMs() {
  static const int ms =
      static_cast<int>(EnvMs("LOOM_SERVER_IDLE_MS", 1000, 60000));
  return ms;
}

std::unique_ptr<grpc::Server> TryStart(
    const std::vector<std::string>& hosts, int port,
    const std::vector<grpc::Service*>& services, int* bound_port,
    std::unique_ptr<grpc::ServerCompletionQueue>* cq) {
  grpc::ServerBuilder builder;
  for (const std::string& host : hosts) {
    builder.AddListeningPort(absl::StrCat(host, ":", port), ServerCredentials(),
                             bound_port);
  }
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Accept the clients' keepalive pings during long calls that carry no
  // data (a watch, a long poll): by default a server allows one ping per
  // 5 minutes and answers more with GOAWAY.
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      kKeepaliveTimeMs / 2);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  // No BDP probes (a PING and its answer per burst received: two more
  // wakeups a call at both ends) for Loom's small messages; bulk transfers
  // are read by clients with windows set for them (MakeBulkChannel).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             ServerConnectionIdleMs());
  for (grpc::Service* s : services) builder.RegisterService(s);
  if (cq != nullptr) *cq = builder.AddCompletionQueue();
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || *bound_port == 0) return nullptr;
  return server;
}

// A port free on `host` now (the kernel's pick), or 0.
int FreePort(const std::string& host) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// gRPC serves the callback API from one process-wide completion queue that
// each channel references from its first callback call until it is
// destroyed; when the count reaches zero the queue is torn down, and a
// channel made meanwhile races that teardown (an abort in
// grpc_cq_internal_unref: "assertion failed: prior > 0"). A process that
// serves a callback service (tests' fakes) holds a reference for its whole
// life with this: one channel, never destroyed, that makes one callback
// call, to a socket that does not exist. Loom's daemons and workers do not
// use that API (async_call.h, async_server.h): its threads wake every
// second.
void HoldCallbackQueue() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct Keeper {
      std::shared_ptr<grpc::Channel> channel =
          grpc::CreateChannel("unix:/nonexistent/loom-callback-queue-keeper",
                              grpc::InsecureChannelCredentials());
      grpc::GenericStub stub{channel};
      rpc::Context ctx;
      grpc::ByteBuffer request, reply;
    };
    auto* keeper = new Keeper;  // never freed: it must outlive every channel
    grpc::Slice empty("", 0);
    keeper->request = grpc::ByteBuffer(&empty, 1);  // a default one is invalid
    keeper->ctx.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::milliseconds(100));
    keeper->stub.UnaryCall(&keeper->ctx, "/loom.Keeper/Hold", {},
                           &keeper->request, &keeper->reply,
                           [](grpc::Status) {});
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<grpc::Server>> StartServer(
    const std::string& host, int port,
    const std::vector<grpc::Service*>& services, int* bound_port,
    bool also_loopback, std::unique_ptr<grpc::ServerCompletionQueue>* cq) {
  if (cq == nullptr) HoldCallbackQueue();  // callback servers share it
  if (const auto& tls = ProcessTls(); !tls.ok()) return tls.status();
  also_loopback =
      also_loopback && host != "0.0.0.0" && !IsLoopbackAddress(host);
  if (!also_loopback) {
    auto server = TryStart({host}, port, services, bound_port, cq);
    if (server == nullptr) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", host, ":", port));
    }
    return server;
  }
  // Two addresses share one port: with port 0 pick one free on both first;
  // another process may take it meanwhile, so try a few.
  for (int attempt = 0; attempt < (port == 0 ? 5 : 1); ++attempt) {
    int p = port != 0 ? port : FreePort(host);
    if (p == 0) continue;
    *bound_port = 0;
    auto server = TryStart({host, "127.0.0.1"}, p, services, bound_port, cq);
    if (server != nullptr) return server;
  }
  return absl::UnavailableError(absl::StrCat("cannot listen on ", host, ":",
                                             port, " and 127.0.0.1:", port));
}

namespace {

// `args` (the caller's tuning), plus what every channel has.
std::shared_ptr<grpc::Channel> NewChannel(const std::string& address,
                                          grpc::ChannelArguments args) {
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // Reconnect quickly after a peer restarts (the head coming back).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  // Long calls to a peer that vanished fail within about 15 s.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // A channel with no call for kChannelIdleMs closes its connection (the
  // next call opens it again): an idle actor's worker does not hold one
  // into the head, nor a driver one to every actor it called once.
  args.SetInt(GRPC_ARG_CLIENT_IDLE_TIMEOUT_MS, kChannelIdleMs);
  // Loom's peers are inside the cluster: never through the http_proxy or
  // https_proxy a user has set for the outside world.
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  return grpc::CreateCustomChannel(ChannelTarget(address), ChannelCredentials(),
                                   args);
}

}  // namespace

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);  // as servers (TryStart)
  return NewChannel(address, std::move(args));
}

std::shared_ptr<grpc::Channel> MakeBulkChannel(const std::string& address) {
  grpc::ChannelArguments args;
  // Its own connection: gRPC shares one among equal channels otherwise.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // The largest frame the peer may send, and the window it may fill before
  // we acknowledge (the default starts at 64 KiB and grows by probing).
  args.SetInt(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, 4 << 20);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 64 << 20);
  return NewChannel(address, std::move(args));
}

Context::Context() : Context(std::string()) {}

Context::Context(const std::string& credential) {
  std::shared_ptr<const Auth> auth = CurrentAuth();
  const std::string& send = credential.empty() ? auth->send : credential;
  if (!send.empty()) AddMetadata(kTokenMetadata, send);
}

void SetClusterToken(std::string token) {
  ChangeAuth([&](Auth& a) {
    a.send = token;
    a.cluster = std::move(token);
    a.cluster_hash.clear();
    a.own.reset();
  });
}

std::string ClusterToken() { return CurrentAuth()->send; }

void UseCredential(std::string credential, Identity who,
                   std::string cluster_hash) {
  ChangeAuth([&](Auth& a) {
    a.send = std::move(credential);
    a.cluster.clear();
    a.cluster_hash = std::move(cluster_hash);
    a.own = std::move(who);
  });
}

void SetPeopleTokens(std::shared_ptr<const PeopleTokens> tokens) {
  ChangeAuth([&](Auth& a) { a.people = std::move(tokens); });
}

std::optional<Identity> IdentifyToken(std::string_view token) {
  std::shared_ptr<const Auth> auth = CurrentAuth();
  if (auth->send.empty()) return Identity{kClusterName, Role::kAdmin, ""};
  return IdentityOf(*auth, absl::string_view(token.data(), token.size()));
}

void OnUnauthenticated(std::function<void()> count) {
  TokenState& t = Tokens();
  absl::MutexLock lock(&t.mu);
  t.on_refused = std::move(count);
}

void OnDenied(std::function<void(const Caller&, const Need&)> denied) {
  TokenState& t = Tokens();
  absl::MutexLock lock(&t.mu);
  t.on_denied = std::move(denied);
}

std::optional<Caller> Admit(const grpc::ServerContextBase& ctx,
                            const Need& need, grpc::Status* refusal) {
  std::shared_ptr<const Auth> auth = CurrentAuth();
  if (auth->send.empty()) {  // no token: every call is the cluster's
    return Caller{Identity{kClusterName, Role::kAdmin, ""}, ""};
  }
  const auto& metadata = ctx.client_metadata();
  auto it = metadata.find(kTokenMetadata);
  std::optional<Identity> who;
  if (it != metadata.end()) {
    who = IdentityOf(*auth,
                     absl::string_view(it->second.data(), it->second.size()));
  }
  TokenState& t = Tokens();
  if (!who.has_value()) {
    std::function<void()> count;
    {
      absl::MutexLock lock(&t.mu);
      count = t.on_refused;
    }
    if (count) count();
    *refusal = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                            "this call lacks the cluster token (or a valid "
                            "token of the cluster's)");
    return std::nullopt;
  }
  Caller caller{*std::move(who), ctx.peer()};
  if (caller.who.role >= need.role) return caller;
  std::function<void(const Caller&, const Need&)> denied;
  {
    absl::MutexLock lock(&t.mu);
    denied = t.on_denied;
  }
  if (denied) denied(caller, need);
  *refusal = grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          DeniedMessage(caller.who, need.method, need.role));
  return std::nullopt;
}

absl::Status ToAbsl(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

void SetTimeout(grpc::ClientContext* ctx, int64_t timeout_ms) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(timeout_ms));
}

absl::Duration HeadWait() {
  static const absl::Duration wait =
      absl::Milliseconds(EnvMs("LOOM_HEAD_WAIT_MS", 0, 60000));
  return wait;
}

absl::Duration HeadBackoff(int tries) {
  return std::min(absl::Milliseconds(50) * (1 << std::min(tries, 4)),
                  absl::Milliseconds(500));
}

bool HeadUnreachable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE;
}

grpc::Status HeadGone(const grpc::Status& last) {
  return grpc::Status(
      grpc::StatusCode::UNAVAILABLE,
      absl::StrCat("the head did not come back within ",
                   absl::FormatDuration(HeadWait()),
                   " ($LOOM_HEAD_WAIT_MS): ", last.error_message()));
}

}  // namespace loom::rpc
