// src/raylet/node_manager.h
//
// NodeManager: the raylet's logic. It grants worker leases against the
// node's resources, queues what does not fit, spills back to nodes in the
// cluster view, fails infeasible demands after a grace period, lends the CPU
// of a worker blocked in Get, and frees the leases and workers of dead
// drivers and workers. Handlers run on its event loop and never see gRPC;
// raylet_service.h adapts them.
//
//   NodeManager node(options, &metrics);
//   node.Start();  // registers with the head, prestarts workers
#ifndef LOOM_SRC_RAYLET_NODE_MANAGER_H_
#define LOOM_SRC_RAYLET_NODE_MANAGER_H_

#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "object_store/store_server.h"
#include "proto/raylet.pb.h"
#include "scheduler/lease_queue.h"
#include "src/common/daemon.h"
#include "src/common/event_loop.h"
#include "src/common/head_events.h"
#include "src/common/memory_trim.h"
#include "src/common/metrics.h"
#include "src/raylet/entrypoints.h"
#include "src/raylet/gcs_link.h"
#include "src/raylet/log_monitor.h"
#include "src/raylet/memory_monitor.h"
#include "src/raylet/node_metrics.h"

namespace grpc {
class ByteBuffer;
}
#include "src/raylet/object_manager.h"
#include "src/raylet/quota_gate.h"
#include "src/raylet/worker_client.h"
#include "src/raylet/worker_pool.h"

namespace loom::raylet {

using Done = std::function<void(absl::Status)>;

// How long an idle node's periodic work (the tick, the memory check) may
// wait for another wakeup: longer than an idle node's heartbeat period
// (GcsLink, 1.67 s), so that it rides on a heartbeat's.
inline constexpr absl::Duration kQuietSlack = absl::Seconds(2);

// Not thread-safe: every Handle* runs on loop().
// What a heartbeat or a node's stats say is available: negative quantities
// (lending can dip below zero) as none.
rpc::Resources NonNegative(const ResourceSet& set);

class NodeManager {
 public:
  struct Options {
    NodeId node_id = NodeId::FromRandom();
    std::string host = "127.0.0.1";
    int port = 0;  // the bound gRPC port, set before Start
    int metrics_port = 0;
    std::string gcs_address;
    std::string session_dir;
    ResourceSet total;
    std::map<std::string, std::string> labels;
    std::string worker_binary;
    int prestart_workers = 1;
    ObjectStoreServer* object_store = nullptr;  // this node's; may be null
    absl::Duration idle_worker_timeout = absl::Seconds(10);
    absl::Duration heartbeat_period = absl::Milliseconds(500);
    absl::Duration infeasible_grace = absl::Seconds(3);
    Clock* clock = Clock::Real();
    // When the head fences this node: after its workers are killed, start
    // again as a new node (--restart-on-fence: re-exec the raylet); returns
    // only if that failed. Empty: exit with kFencedExitCode.
    std::function<void()> restart_when_fenced;
    // The memory monitor (memory_monitor.h). Above `memory_usage_threshold`
    // of the limit it kills a worker; a threshold <= 0 or >= 1 turns it off.
    // A limit > 0 is measured against this raylet's workers' memory (their
    // PSS) instead of the node's; files are read under `memory_root`.
    double memory_usage_threshold = 0.95;
    int64_t memory_limit_bytes = 0;
    absl::Duration memory_check_period = absl::Milliseconds(250);
    std::string memory_root = "/";
    // Added to the raylet's niceness for the workers and fork servers it
    // starts (not drivers), so that busy workers do not starve the
    // daemons' heartbeats (the raylet's flag: 15, as Ray's workers).
    int worker_niceness = 0;
  };
  NodeManager(Options options, Metrics* metrics);
  ~NodeManager();

  // Registers with the head (retrying up to `register_timeout`).
  absl::Status Start(absl::Duration register_timeout);
  void Stop();
  EventLoop& loop() { return loop_; }

  void set_port(int port) { options_.port = port; }
  void set_object_manager(ObjectManager* om) { object_manager_ = om; }
  const NodeId& node_id() const { return options_.node_id; }
  // Where this node's log files are ("" without a session directory).
  std::string log_dir() const {
    return options_.session_dir.empty() ? "" : options_.session_dir + "/logs";
  }
  // This raylet's outgoing channels, for its object manager too.
  ClientPool* clients() { return &clients_; }
  // The head (host:port[,standby...]); empty without one.
  const std::string& gcs_address() const { return options_.gcs_address; }
  // Thread-safe: a node's raylet address, from the latest cluster view.
  std::optional<std::string> AddressOf(const NodeId& node) const;

  // Object transfers run off the loop, on gRPC and transfer threads.
  void HandlePullObject(const rpc::PullObjectRequest& req,
                        rpc::PullObjectReply* reply, Done done);
  // Any thread; the reply is a serialized ReadObjectChunkReply.
  absl::Status HandleReadObjectChunk(const rpc::ReadObjectChunkRequest& req,
                                     grpc::ByteBuffer* reply);
  void HandleFreeObjects(const rpc::FreeObjectsRequest& req,
                         rpc::FreeObjectsReply* reply, Done done);
  // Placement group bundles (two-phase: prepare, commit; release).
  void HandlePrepareBundle(const rpc::BundleRequest& req,
                           rpc::BundleReply* reply, Done done);
  void HandleCommitBundle(const rpc::BundleRequest& req,
                          rpc::BundleReply* reply, Done done);
  void HandleReleaseBundle(const rpc::BundleRequest& req,
                           rpc::BundleReply* reply, Done done);

  // `abandoned` says whether the caller gave up on its call (cancelled it,
  // or its deadline is less than a second away): such a request is
  // dropped, never granted a worker nobody would use or return.
  void HandleRequestWorkerLease(const rpc::LeaseRequest& req,
                                rpc::LeaseReply* reply, Done done,
                                std::function<bool()> abandoned = nullptr);
  void HandleReturnWorker(const rpc::ReturnWorkerRequest& req,
                          rpc::ReturnWorkerReply* reply, Done done);
  void HandleRegisterWorker(const rpc::RegisterWorkerRequest& req,
                            rpc::RegisterWorkerReply* reply, Done done);
  void HandleRegisterDriver(const rpc::RegisterDriverRequest& req,
                            rpc::RegisterDriverReply* reply, Done done);
  void HandleNotifyBlocked(const rpc::NotifyBlockedRequest& req,
                           rpc::NotifyBlockedReply* reply, Done done);
  void HandleReportTaskStats(const rpc::ReportTaskStatsRequest& req,
                             rpc::ReportTaskStatsReply* reply, Done done);
  void HandleGetNodeStats(const rpc::GetNodeStatsRequest& req,
                          rpc::GetNodeStatsReply* reply, Done done);
  // Publishes the job's worker output to the head now (see log_monitor.h).
  void HandleFlushLogs(const rpc::FlushJobLogsRequest& req,
                       rpc::FlushJobLogsReply* reply, Done done);
  // Submitted jobs' entrypoints (entrypoints.h).
  void HandleStartEntrypoint(const rpc::StartEntrypointRequest& req,
                             rpc::StartEntrypointReply* reply, Done done) {
    entrypoints_->Start(req, reply, std::move(done));
    TickSoon();  // not quiet any more: its end is reaped promptly
  }
  void HandleStopEntrypoint(const rpc::StopEntrypointRequest& req,
                            rpc::StopEntrypointReply* reply, Done done) {
    entrypoints_->Stop(req, reply, std::move(done));
  }

 private:
  struct PendingLease {
    rpc::LeaseRequest req;
    rpc::LeaseReply* reply;
    Done done;
    JobId job;
    WorkerId requester;
    // Workers that died as they were joining the job for it: tried again
    // (a system failure) up to kMaxJoinFailures, then refused.
    int join_failures = 0;
    std::function<bool()> abandoned;  // see HandleRequestWorkerLease
    bool Abandoned() const { return abandoned && abandoned(); }
  };
  struct Grant {  // resources taken, waiting for a worker
    uint64_t handle;
    Allocation allocation;
  };
  struct Lease {
    LeaseId id;
    WorkerId worker;
    WorkerId requester;
    JobId job;
    Allocation allocation;
    ResourceSet lent;       // CPU lent back while the worker is blocked
    bool detached = false;  // a detached actor's: outlives the driver
    bool actor = false;     // for the memory monitor's choice
    bool retriable = false;
    absl::Time granted;
    std::string head_epoch;  // asked by the head: its incarnation
  };
  struct Driver {
    JobId job;
    pid_t pid;
  };

  void Dispatch();
  // Hands a request no node known here can run to the head's scheduler.
  void AskHead(uint64_t handle, const rpc::LeaseRequest& lease);
  // Answers the request INFEASIBLE (the caller sends the reply).
  void Infeasible(PendingLease& p, const std::string& message);
  void AssignWorkers();
  void Assign(Worker* worker, uint64_t handle, Allocation allocation);
  void ReleaseLease(const LeaseId& id, bool kill_worker);
  void Tick();
  // Ticks now, and from then on at the rate Quiet() asks for (the tick
  // scheduled before is dropped).
  void TickSoon();
  // Cancels the requests whose callers gave up.
  void DropAbandoned();
  // Reaps workers and drivers that ended (the watch said, or polling).
  void ReapEnded();
  // Nothing waits on time: no lease request queued or waiting for a
  // worker, no worker starting. The tick then rides on other wakeups.
  bool Quiet() const;
  // No worker of this runtime (RuntimeKey) can start: its waiting leases
  // fail with `why`.
  void FailRuntime(const std::string& key, const std::string& why);
  // Takes off `node`'s view what was spilled to it after its `heartbeat`
  // (see spill_debits_), and forgets what the heartbeat already counts.
  void ApplySpillDebits(RemoteNode& node, absl::Time heartbeat);
  // Resources and store memory for /metrics, at most once a second.
  void PublishMetrics();
  void OnWorkerDied(const Worker& worker);
  // A worker of a job died or was killed: deletes the objects it owned
  // here and tells the head (WORKER_DEAD), which tells the other nodes;
  // `cause` says why when this raylet killed it (out of memory).
  void ReportGone(const Worker& worker, const std::string& cause = "");
  // WORKER_DEAD from the head (any node's worker, this one's too): frees
  // the leases it held here and deletes the objects it owned here.
  void OnRemoteWorkerDead(const rpc::Event& e);
  void OnDriverDied(const WorkerId& id, const Driver& driver);
  // Ends the leases (killing their workers) and cancels the queued requests
  // whose requester and job match.
  void FreeWhere(
      const std::function<bool(const WorkerId&, const JobId&)>& match,
      const std::string& why);
  void FillHeartbeat(rpc::HeartbeatRequest* req);
  static void AddDemands(const std::vector<ResourceSet>& demands,
                         google::protobuf::RepeatedPtrField<rpc::Demand>* into);
  // The head declared a node dead: out of the view before the next one.
  void OnNodeDead(const std::string& node_id);
  void OnView(const rpc::HeartbeatReply& reply);
  // The head published the job's end (its driver finished or died, on any
  // node): its leases, queued requests and workers here are freed.
  // Frees the job's leases and workers here, and the objects its driver (at
  // `driver`, host:port) owned in this node's store.
  void OnJobFinished(const std::string& job_id, const std::string& driver);
  // The head refused this node (GcsLink's on_refused): kill the workers and
  // exit, with kVersionMismatchExitCode for another version, else (declared
  // dead: fenced) restart as a new node (restart_when_fenced) or exit with
  // kFencedExitCode.
  [[noreturn]] void OnRefused(const absl::Status& why);
  rpc::NodeInfo SelfInfo() const;
  // The memory monitor's round (node_memory.cc): above the threshold, kills
  // one leased worker and records why for its owner's ReturnWorker.
  void CheckMemory();
  absl::StatusOr<MemoryUsage> MeasureMemory();
  void RecordDeath(const LeaseId& lease, rpc::ErrorInfo death);
  // Takes the request back (its resources, its place in the queue) and
  // answers it REJECTED with `why`.
  void Cancel(uint64_t handle, const std::string& why);
  // Takes it back and answers DEADLINE_EXCEEDED: its caller gave up, or
  // will before a grant could reach it (it asks again).
  void Abandon(uint64_t handle);
  // Its resources and its place in the queue go back; false if unknown.
  bool TakeBack(uint64_t handle);

  // Per-job quotas (node_quotas.cc): the queue asks quotas_ through
  // job_gate_; heartbeats carry each job's use and bring its allowance.
  class JobGate : public LeaseGate {
   public:
    explicit JobGate(NodeManager* node) : node_(node) {}
    bool Holds(uint64_t handle, const ResourceSet& demand) override;
    void Granted(uint64_t handle, const ResourceSet& demand) override;

   private:
    NodeManager* node_;
  };
  void OnQuotas(const rpc::HeartbeatReply& reply);
  // Runs `then` once the head has said whether `job` has a quota (a
  // heartbeat asks at once when it has not).
  void WhenQuotaKnown(const JobId& job, std::function<void()> then);
  std::vector<std::pair<JobId, std::function<void()>>> quota_waiters_;
  // What a lease no longer holds goes back to its job's use here.
  void GiveBack(const JobId& job, const Allocation& allocation,
                const ResourceSet& lent);
  QuotaGate quotas_;
  JobGate job_gate_{this};

  Options options_;
  EventLoop loop_;
  NodeResources resources_;
  LeaseQueue queue_;
  Metrics* metrics_;
  // Says when a worker or driver process ends (posts a reap to the loop).
  std::unique_ptr<ProcessWatch> watch_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<GcsLink> gcs_;
  uint64_t tick_chain_ = 0;  // a scheduled tick of an older chain drops
  std::vector<RemoteNode> others_;
  // What each of them last reported (the head's view), and when.
  struct Reported {
    ResourceSet available;
    absl::Time heartbeat;
  };
  absl::flat_hash_map<std::string, Reported> reported_;
  // What this node spilled to each other node (by id) and when: a view
  // from a heartbeat older than a spillback does not count it yet, so
  // OnView takes it off again (else a burst piles onto one node).
  struct SpillDebit {
    ResourceSet demand;
    absl::Time at;
  };
  absl::flat_hash_map<std::string, std::vector<SpillDebit>> spill_debits_;
  // Placement group bundles on this node, by pg id + index: the resources
  // reserved, and (committed) those offered under the bundle's names.
  struct Bundle {
    std::string pg_id;
    int index = 0;
    std::string head_epoch;  // the head incarnation that prepared it
    Allocation reserved;
    ResourceSet offered;
    bool committed = false;
  };
  // Releases the bundle (what runs in it stops); false when none.
  bool ReleaseBundle(const std::string& key);
  // Re-registering: what this node holds for heads, and releasing what the
  // head says it no longer knows.
  void FillHeld(rpc::RegisterNodeRequest* req) const;
  void ReleaseUnknown(const rpc::RegisterNodeReply& reply);
  absl::flat_hash_map<std::string, Bundle> bundles_;
  bool totals_changed_ = false;  // the next heartbeat carries the totals
  // A grant of a bundle's GPUs names the GPU ids the bundle reserved.
  void AddBundleGpus(Allocation* allocation);
  ObjectManager* object_manager_ = nullptr;
  mutable absl::Mutex addresses_mu_;
  absl::flat_hash_map<NodeId, std::string> addresses_
      ABSL_GUARDED_BY(addresses_mu_);
  int64_t view_version_ = 0;  // of the head's view held (0: none)

  uint64_t next_handle_ = 1;
  absl::flat_hash_map<uint64_t, PendingLease> pending_;
  std::vector<Grant> waiting_for_worker_;
  absl::flat_hash_map<LeaseId, Lease> leases_;
  absl::flat_hash_map<WorkerId, LeaseId> lease_of_worker_;
  absl::flat_hash_map<WorkerId, Driver> drivers_;
  // Freed memory back to the kernel, from the periodic tick.
  MemoryTrim trim_;
  ClientPool clients_{
      ClientPool::Options::ForDaemon()};     // outgoing calls: workers, other
                                             // raylets
  std::unique_ptr<HeadEvents> head_events_;  // jobs that end
  std::unique_ptr<LogMonitor> logs_;         // workers' output, to the head
  std::unique_ptr<NodeMetrics> node_metrics_;
  std::unique_ptr<Entrypoints> entrypoints_;
  absl::Time metrics_published_ = absl::InfinitePast();
  WorkerClient workers_{&clients_};
  // Why this raylet killed a lease's worker (the memory monitor), kept for
  // the owner's ReturnWorker; the oldest go first past a bound.
  absl::flat_hash_map<LeaseId, rpc::ErrorInfo> deaths_;
  std::deque<LeaseId> death_order_;
  absl::Time last_memory_kill_ = absl::InfinitePast();

  prometheus::Counter& leases_granted_;
  prometheus::Counter& spillbacks_;
  prometheus::Counter& infeasible_;
  prometheus::Counter& head_placed_;
  prometheus::Gauge& queue_length_;
  prometheus::Gauge& store_capacity_;
  prometheus::Gauge& store_used_;
  prometheus::Gauge& store_objects_;
  prometheus::Counter& tasks_submitted_;
  prometheus::Counter& tasks_finished_;
  prometheus::Counter& tasks_failed_;
  prometheus::Counter& tasks_retried_;
  prometheus::Counter& memory_kills_;
  prometheus::Gauge& memory_used_;
};

}  // namespace loom::raylet

#endif  // LOOM_SRC_RAYLET_NODE_MANAGER_H_
