// src/common/rpc.h
//
// The one place that creates gRPC servers and channels. Message-size limits
// are set here explicitly (gRPC's 4 MiB default would refuse transfer
// chunks), and this is where TLS credentials and the cluster token will be
// added. Include only at a part's rpc edge.
//
//   int port = 0;
//   auto server = rpc::StartServer("127.0.0.1", 0, {&service}, &port);
//   auto stub = loom::rpc::Raylet::NewStub(rpc::MakeChannel("127.0.0.1:7000"));
#ifndef LOOM_COMMON_RPC_H_
#define LOOM_COMMON_RPC_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace loom::rpc {

inline constexpr int kMaxMessageBytes = 512 * 1024 * 1024;
// Keepalive: a channel with calls in flight and nothing received for
// kKeepaliveTime pings its peer, and a peer that does not answer within
// kKeepaliveTimeout is gone (its calls fail UNAVAILABLE). A host that
// vanishes without a TCP reset (cut off, frozen) is noticed so, not after
// TCP's 15 minutes; idle channels send nothing.
inline constexpr int kKeepaliveTimeMs = 10000;
inline constexpr int kKeepaliveTimeoutMs = 5000;

// Binds host:port (0 picks a free port, written to *bound_port). Fails when
// the port is taken: SO_REUSEPORT is off, so two daemons never share one.
absl::StatusOr<std::unique_ptr<grpc::Server>> StartServer(
    const std::string& host, int port,
    const std::vector<grpc::Service*>& services, int* bound_port);

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address);

absl::Status ToAbsl(const grpc::Status& status);
grpc::Status ToGrpc(const absl::Status& status);

// A deadline `timeout` from now, for a context.
void SetTimeout(grpc::ClientContext* ctx, int64_t timeout_ms);

}  // namespace loom::rpc

#endif  // LOOM_COMMON_RPC_H_

#include "src/common/event_loop.h"

namespace loom::rpc {

// Adapts a callback-API unary method to a handler on an event loop:
// handler(request, reply, done) runs on `loop`; done(status) finishes the
// call. The request and reply live until then.
template <typename Req, typename Reply, typename Handler>
grpc::ServerUnaryReactor* PostToLoop(grpc::CallbackServerContext* ctx,
                                     EventLoop& loop, const Req* req,
                                     Reply* reply, Handler handler) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  loop.Post([req, reply, reactor, handler = std::move(handler)]() mutable {
    handler(*req, reply,
            [reactor](absl::Status s) { reactor->Finish(ToGrpc(s)); });
  });
  return reactor;
}

}  // namespace loom::rpc
