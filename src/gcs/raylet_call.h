// src/gcs/raylet_call.h
//
// One asynchronous call from the head to a raylet (the head's rpc edge:
// log_files.cc, node_stats_calls.cc): through the head's client pool, with
// a deadline, counted in `calls` so that the head's shutdown waits for it,
// its answer handed to `then` on the head's loop. Called on the loop (once
// the head is stopping, `then` runs at once with UNAVAILABLE).
//
//   CallRaylet<rpc::GetNodeStatsReply>(
//       clients_, log_reads_, loop_, RayletAddress(node),
//       rpc::GetNodeStatsRequest(), 5000,
//       [](auto* async, auto* ctx, auto* req, auto* reply, auto cb) {
//         async->GetNodeStats(ctx, req, reply, std::move(cb));
//       },
//       [](const grpc::Status& s, rpc::GetNodeStatsReply reply) { ... });
#ifndef LOOM_GCS_RAYLET_CALL_H_
#define LOOM_GCS_RAYLET_CALL_H_

#include <functional>
#include <string>
#include <utility>

#include "proto/raylet.grpc.pb.h"
#include "src/common/calls_in_flight.h"
#include "src/common/client_pool.h"
#include "src/common/event_loop.h"
#include "src/common/rpc.h"

namespace loom::gcs {

template <typename Reply, typename Request, typename Start>
void CallRaylet(ClientPool& clients, CallsInFlight& calls, EventLoop& loop,
                const std::string& address, Request req, int64_t timeout_ms,
                Start start,
                std::function<void(const grpc::Status&, Reply)> then) {
  struct Call {
    rpc::Context ctx;
    Request req;
    Reply reply;
  };
  auto* call = new Call;
  call->req = std::move(req);
  rpc::SetTimeout(&call->ctx, timeout_ms);
  if (!calls.Start(&call->ctx)) {  // the head is stopping
    delete call;
    return then(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "the head is stopping"),
        Reply());
  }
  start(clients.Stub<rpc::Raylet>(address)->async(), &call->ctx, &call->req,
        &call->reply,
        [&calls, &loop, call, then = std::move(then)](grpc::Status s) mutable {
          loop.Post([s, reply = std::move(call->reply),
                     then = std::move(then)]() mutable {
            then(s, std::move(reply));
          });
          calls.Finish(&call->ctx);
          delete call;
        });
}

}  // namespace loom::gcs

#endif  // LOOM_GCS_RAYLET_CALL_H_
