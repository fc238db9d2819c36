// src/common/async_call.h
//
// Asynchronous unary calls without gRPC's callback API. gRPC 1.51 drains
// that API's process-wide queue with at least two threads of its own that
// wake every second with nothing to do (a 1 s wait, then 100 ms asleep:
// ~55 of an idle actor's ~75 wakeups in 10 s). Calls made here complete on
// one completion queue that Loom's own threads drain with no deadline, so
// they wake only when a call completes. Core workers (drivers and workers)
// make all their asynchronous calls here and serve from AsyncServer
// (async_server.h), as do the head and the raylet.
//
//   rpc::AsyncCall(*stub, &rpc::Raylet::Stub::PrepareAsyncFreeObjects,
//                  &call->ctx, call->req, &call->reply,
//                  [call](grpc::Status s) { ...; delete call; });
//
// `ctx` and `reply` must live until `done` has run; `req` is serialized
// before AsyncCall returns. `done` runs on a queue thread, as a callback
// API's did on gRPC's: it must not wait for another call's completion.
#ifndef LOOM_COMMON_ASYNC_CALL_H_
#define LOOM_COMMON_ASYNC_CALL_H_

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>

namespace loom::rpc {

// What a completion queue hands back: Complete(ok) runs once, on a thread
// draining the queue, and may delete the tag.
class CompletionTag {
 public:
  virtual ~CompletionTag() = default;
  virtual void Complete(bool ok) = 0;
};

// Drains `cq` until it is shut down and empty, completing each tag; names
// the calling thread `thread_name` (at most 15 characters) first.
void DrainQueue(grpc::CompletionQueue* cq, const char* thread_name);

// The process's queue for outgoing calls, never destroyed. Its threads
// ("loom-rpc-calls": one with LOOM_GRPC_CORES=1, as workers have it; else
// half of LoomCores(), 2 to 16, as gRPC sizes its own pollers) start with
// the first call.
grpc::CompletionQueue* CallQueue();

// A stub's PrepareAsyncMethod.
template <typename Stub, typename Req, typename Reply>
using PrepareUnary = std::unique_ptr<grpc::ClientAsyncResponseReader<Reply>> (
    Stub::*)(grpc::ClientContext*, const Req&, grpc::CompletionQueue*);

namespace internal {

// Starts a call prepared on CallQueue(); done gets its status there.
template <typename Reply>
void StartOnQueue(
    std::unique_ptr<grpc::ClientAsyncResponseReader<Reply>> reader,
    Reply* reply, std::function<void(grpc::Status)> done) {
  struct Pending final : CompletionTag {
    std::unique_ptr<grpc::ClientAsyncResponseReader<Reply>> reader;
    grpc::Status status;
    std::function<void(grpc::Status)> done;
    void Complete(bool) override {
      done(std::move(status));
      delete this;
    }
  };
  auto* pending = new Pending;
  pending->done = std::move(done);
  pending->reader = std::move(reader);
  pending->reader->StartCall();
  pending->reader->Finish(reply, &pending->status, pending);
}

}  // namespace internal

template <typename Stub, typename Req, typename Reply>
void AsyncCall(Stub& stub, PrepareUnary<Stub, Req, Reply> prepare,
               grpc::ClientContext* ctx, const Req& req, Reply* reply,
               std::function<void(grpc::Status)> done) {
  internal::StartOnQueue((stub.*prepare)(ctx, req, CallQueue()), reply,
                         std::move(done));
}

// A call through a generic stub (raw bytes both ways: the object manager's
// chunks), as AsyncCall.
inline void AsyncGenericCall(grpc::GenericStub& stub, const std::string& method,
                             grpc::ClientContext* ctx,
                             const grpc::ByteBuffer& req,
                             grpc::ByteBuffer* reply,
                             std::function<void(grpc::Status)> done) {
  internal::StartOnQueue(stub.PrepareUnaryCall(ctx, method, req, CallQueue()),
                         reply, std::move(done));
}

}  // namespace loom::rpc

#endif  // LOOM_COMMON_ASYNC_CALL_H_
