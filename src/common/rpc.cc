#include "src/common/rpc.h"

#include <grpcpp/generic/generic_stub.h>

#include <mutex>

#include "absl/strings/str_cat.h"

namespace loom::rpc {

namespace {

// gRPC serves the callback API from one process-wide completion queue that
// each channel references from its first callback call until it is
// destroyed; when the count reaches zero the queue is torn down, and a
// channel made meanwhile races that teardown (an abort in
// grpc_cq_internal_unref: "assertion failed: prior > 0"). Loom makes and
// drops channels and servers all the time (a private cluster per test, stubs
// per peer), so one channel, never destroyed, holds a reference for the life of
// the process: it makes one callback call, to a socket that does not exist,
// which fails at once.
void HoldCallbackQueue() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct Keeper {
      std::shared_ptr<grpc::Channel> channel =
          grpc::CreateChannel("unix:/nonexistent/loom-callback-queue-keeper",
                              grpc::InsecureChannelCredentials());
      grpc::GenericStub stub{channel};
      grpc::ClientContext ctx;
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
    const std::vector<grpc::Service*>& services, int* bound_port) {
  HoldCallbackQueue();  // servers share that queue too
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat(host, ":", port),
                           grpc::InsecureServerCredentials(), bound_port);
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
  for (grpc::Service* s : services) builder.RegisterService(s);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || *bound_port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", host, ":", port));
  }
  return server;
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address) {
  HoldCallbackQueue();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // Reconnect quickly after a peer restarts (the head coming back).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Long calls to a peer that vanished fail within about 15 s.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   args);
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

}  // namespace loom::rpc
