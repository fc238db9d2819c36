// src/common/calls_in_flight.h
//
// CallsInFlight: the outgoing gRPC calls a component has started and whose
// callbacks have not finished, so that the component's shutdown can cancel
// them and wait until no callback will touch it again. Every component that
// calls out asynchronously keeps one.
//
//   auto* call = new PingCall;
//   if (!calls_.Start(&call->ctx)) return delete call;  // shutting down
//   rpc::AsyncCall(*stub, &Stub::PrepareAsyncPing, &call->ctx, call->req,
//                  &call->reply, [this, call](grpc::Status s) {
//                    OnPing(call, s);
//                    calls_.Finish(&call->ctx);  // `this` no more
//                    delete call;
//                  });
//   ...
//   calls_.Shutdown(absl::Milliseconds(500));  // grace, cancel, wait
//
// Thread-safe.
#ifndef LOOM_COMMON_CALLS_IN_FLIGHT_H_
#define LOOM_COMMON_CALLS_IN_FLIGHT_H_

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace grpc {
class ClientContext;
}  // namespace grpc

namespace loom {

class CallsInFlight {
 public:
  // How long Shutdown waits for cancelled calls' callbacks.
  static constexpr absl::Duration kCancelWait = absl::Seconds(5);

  // A call is about to start with `ctx`. False once Shutdown has begun: the
  // call must not be started.
  bool Start(grpc::ClientContext* ctx);
  // The call's callback is done with the component.
  void Finish(grpc::ClientContext* ctx);
  // Refuses new calls, lets those in flight finish for up to `grace`,
  // cancels the rest and waits for their callbacks (up to kCancelWait).
  // Call it from a thread no callback waits on.
  void Shutdown(absl::Duration grace = absl::ZeroDuration());
  int size() const;

 private:
  mutable absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loom

#endif  // LOOM_COMMON_CALLS_IN_FLIGHT_H_
