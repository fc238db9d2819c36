// src/gcs/peer_call.h
//
// One asynchronous call from the head to a raylet or a core worker (the
// head's rpc edge: log_files.cc, job_logs.cc, node_stats_calls.cc; the caller
// includes the service's header): through the head's client pool, with a
// deadline, counted in `calls` so that the head's shutdown waits for it, its
// answer handed to `then` on the head's loop. Called on the loop (once the head
// is stopping, `then` runs at once with UNAVAILABLE).
//
//   CallPeer<rpc::Raylet, rpc::GetNodeStatsReply>(
//       clients_, log_reads_, loop_, RayletAddress(node),
//       rpc::GetNodeStatsRequest(), 5000,
//       &rpc::Raylet::Stub::PrepareAsyncGetNodeStats,
//       [](const grpc::Status& s, rpc::GetNodeStatsReply reply) { ... });
#ifndef LOOM_GCS_PEER_CALL_H_
#define LOOM_GCS_PEER_CALL_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "src/common/async_call.h"
#include "src/common/calls_in_flight.h"
#include "src/common/client_pool.h"
#include "src/common/event_loop.h"
#include "src/common/rpc.h"

namespace loom::gcs {

// `send_as`: a credential sent instead of the head's own (rpc::Context),
// for a peer whose address did not come from the cluster.
template <typename Service, typename Reply, typename Request>
void CallPeer(ClientPool& clients, CallsInFlight& calls, EventLoop& loop,
              const std::string& address, Request req, int64_t timeout_ms,
              rpc::PrepareUnary<typename Service::Stub, Request, Reply> method,
              std::function<void(const grpc::Status&, Reply)> then,
              const std::string& send_as = "") {
  struct Call {
    explicit Call(const std::string& as) : ctx(as) {}
    rpc::Context ctx;
    Request req;
    Reply reply;
  };
  auto* call = new Call(send_as);
  call->req = std::move(req);
  rpc::SetTimeout(&call->ctx, timeout_ms);
  if (!calls.Start(&call->ctx)) {  // the head is stopping
    delete call;
    return then(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "the head is stopping"),
        Reply());
  }
  rpc::AsyncCall(
      *clients.Stub<Service>(address), method, &call->ctx, call->req,
      &call->reply,
      [&calls, &loop, call, then = std::move(then)](grpc::Status s) mutable {
        loop.Post(
            [s, reply = std::move(call->reply),
             then = std::move(then)]() mutable { then(s, std::move(reply)); });
        calls.Finish(&call->ctx);
        delete call;
      });
}

// Calls each of `addresses` with its request at once (as CallPeer); `done`
// gets every reply, in order, on the loop once the last is in, and errors[i]
// saying why call i failed ("" when it did not). An empty address is not
// called: its error is `missing`.
template <typename Service, typename Reply, typename Request>
void CallPeers(ClientPool& clients, CallsInFlight& calls, EventLoop& loop,
               const std::vector<std::string>& addresses,
               std::vector<Request> reqs, int64_t timeout_ms,
               rpc::PrepareUnary<typename Service::Stub, Request, Reply> method,
               const std::string& missing,
               std::function<void(std::vector<Reply> replies,
                                  std::vector<std::string> errors)>
                   done,
               const std::string& send_as = "") {
  struct Out {
    std::vector<Reply> replies;
    std::vector<std::string> errors;
  };
  auto out = std::make_shared<Out>();
  out->replies.resize(addresses.size());
  out->errors.resize(addresses.size());
  auto pending = std::make_shared<size_t>(1);  // one for the loop below
  auto finish_one = [out, pending, done = std::move(done)] {
    if (--*pending == 0) {
      done(std::move(out->replies), std::move(out->errors));
    }
  };
  for (size_t i = 0; i < addresses.size(); ++i) {
    if (addresses[i].empty()) {
      out->errors[i] = missing;
      continue;
    }
    ++*pending;
    CallPeer<Service, Reply>(
        clients, calls, loop, addresses[i], std::move(reqs[i]), timeout_ms,
        method,
        [out, finish_one, i](const grpc::Status& s, Reply reply) {
          if (s.ok()) {
            out->replies[i] = std::move(reply);
          } else {
            out->errors[i] = s.error_message();
          }
          finish_one();
        },
        send_as);
  }
  finish_one();
}

}  // namespace loom::gcs

#endif  // LOOM_GCS_PEER_CALL_H_
