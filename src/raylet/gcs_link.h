// src/raylet/gcs_link.h
//
// GcsLink: the raylet's connection to the head. It registers the node,
// heartbeats its load and receives the cluster view. A lost head is treated
// as temporary: heartbeats back off, and once the head answers again (or
// says it does not know the node) the node registers again.
//
//   GcsLink link({.gcs_address = addr, .loop = &loop, ...});
//   link.RegisterBlocking(absl::Seconds(30));
//   link.StartHeartbeats();
#ifndef LOOM_SRC_RAYLET_GCS_LINK_H_
#define LOOM_SRC_RAYLET_GCS_LINK_H_

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "proto/gcs.grpc.pb.h"
#include "src/common/async_call.h"
#include "src/common/event_loop.h"
#include "src/common/ids.h"

namespace loom::raylet {

// Not thread-safe: runs on the raylet's event loop (RegisterBlocking
// before the loop serves anything).
class GcsLink {
 public:
  struct Options {
    std::string gcs_address;
    EventLoop* loop = nullptr;
    rpc::NodeInfo self;
    absl::Duration heartbeat_period = absl::Milliseconds(500);
    // Fills node_id, load and demands for the next heartbeat.
    std::function<void(rpc::HeartbeatRequest*)> fill_heartbeat;
    std::function<void(const rpc::HeartbeatReply&)> on_view;
    // After registering again with a head that restarted (on the loop),
    // with its reply (what to release).
    std::function<void(const rpc::RegisterNodeReply&)> on_reregistered;
    // The head refused this node after it had joined (on the loop): it
    // declared it dead (it was cut off, or stopped answering: fenced), or,
    // having restarted, it runs another version (IsVersionMismatch). Either
    // way the node must not go on; the status says why.
    std::function<void(const absl::Status&)> on_refused;
    // Adds what the node holds for heads to a registration (on the loop).
    std::function<void(rpc::RegisterNodeRequest*)> fill_held;
  };
  explicit GcsLink(Options options);

  // Registers this node, retrying while the head is unreachable. A refusal
  // is returned at once: FAILED_PRECONDITION for a node of another version
  // (IsVersionMismatch) names both versions.
  absl::Status RegisterBlocking(absl::Duration timeout);
  void StartHeartbeats();
  // Sends the next heartbeat now (or as soon as the one in flight is
  // answered) rather than after the period.
  void HeartbeatSoon();
  // Work arrived (a lease, a bundle): a link that had slowed to the idle
  // period heartbeats now, and at the full rate again.
  void Active();
  // Reports the head must hear: sent again with backoff while the head is
  // unreachable (a restart, a takeover) or too busy to answer in time, for
  // rpc::HeadWait().
  void MarkJobFinished(const std::string& job_id, bool driver_died);
  // Tells the head that a worker of `job` at `address` is gone, and why
  // when this raylet knows (it killed it).
  void ReportWorkerDeath(const WorkerId& worker, const std::string& address,
                         const JobId& job, const std::string& cause);
  // Asks the head to place a request this node cannot; `done` runs on the
  // loop.
  void ScheduleLease(
      rpc::ScheduleLeaseRequest req,
      std::function<void(absl::Status, const rpc::ScheduleLeaseReply&)> done);
  void Unregister();
  bool connected() const { return connected_; }

 private:
  // Sends `req` by the stub method `send` (PrepareAsyncX), again while the
  // head is unreachable, until `give_up`.
  template <typename Request, typename Reply>
  void Report(rpc::PrepareUnary<rpc::Gcs::Stub, Request, Reply> send,
              Request req, absl::Time give_up, int tries = 0);
  void Heartbeat();
  void ReRegister();
  rpc::RegisterNodeRequest Registration() const;

  Options options_;
  std::unique_ptr<rpc::Gcs::Stub> stub_;
  int failures_ = 0;
  bool in_flight_ = false;  // a heartbeat
  bool again_ = false;      // HeartbeatSoon while one was in flight
  uint64_t chain_ = 0;      // a scheduled heartbeat of an older chain drops
  bool connected_ = false;
  bool stopped_ = false;
  // A node whose heartbeats said nothing new kQuietBeats times running, and
  // heard nothing new back, heartbeats at the idle period: slower, but
  // well inside the head's timeout for it (RegisterNodeReply).
  static constexpr int kQuietBeats = 4;
  absl::Duration Period() const;
  absl::Duration head_timeout_ = absl::ZeroDuration();
  int quiet_ = 0;
  rpc::HeartbeatRequest last_sent_;
  rpc::HeartbeatReply last_heard_;
};

}  // namespace loom::raylet

#endif  // LOOM_SRC_RAYLET_GCS_LINK_H_
