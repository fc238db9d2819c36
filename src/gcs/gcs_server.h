// src/gcs/gcs_server.h
//
// GcsServer: the head's state and the handlers for every Gcs RPC: node
// table, KV, jobs, object directory, events. Handlers run on the server's
// event loop and never see gRPC types; gcs_service.cc adapts them.
//
//   GcsServer gcs({.node_timeout = absl::Seconds(5)}, &metrics);
//   gcs.Start();
//   gcs.loop().Post([&] { gcs.HandleKvGet(req, &reply, done); });
#ifndef LOOM_GCS_GCS_SERVER_H_
#define LOOM_GCS_GCS_SERVER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "proto/gcs.pb.h"
#include "proto/raylet.pb.h"
#include "proto/worker.pb.h"
#include "src/common/calls_in_flight.h"
#include "src/common/event_loop.h"
#include "src/common/memory_trim.h"
#include "src/common/metrics.h"
#include "src/common/roles.h"
#include "src/common/version.h"
#include "src/gcs/actor_manager.h"
#include "src/gcs/audit_log.h"
#include "src/gcs/global_scheduler.h"
#include "src/gcs/head_metrics.h"
#include "src/gcs/job_manager.h"
#include "src/gcs/log_channel.h"
#include "src/gcs/node_table.h"
#include "src/gcs/placement_groups.h"
#include "src/gcs/pubsub.h"
#include "src/gcs/quota_book.h"
#include "src/gcs/storage.h"
#include "src/gcs/task_store.h"
#include "src/gcs/token_table.h"
#include "src/gcs/transfer_log.h"

namespace loom::gcs {

// Not thread-safe: every Handle* runs on loop().
class GcsServer {
 public:
  struct Options {
    absl::Duration node_timeout = absl::Seconds(5);
    Clock* clock = Clock::Real();
    // What nodes must match to register (tests make a head of another build).
    Version version = ThisVersion();
    // Where the tables live (not owned; must outlive the server); null: an
    // in-memory store of the server's own.
    StoreClient* store = nullptr;
    // Else where the server keeps them: "" (in memory) or redis://...
    // (see MakeStoreClient); Start() fails when it cannot connect.
    std::string storage;
    // With a store that is not durable, the job counter is also kept in
    // <session_dir>/gcs_next_job, so that a head restarted on the same
    // session continues it.
    std::string session_dir;
    // The cluster's token goes through storage (null: no token, --no-auth).
    // At load, with none given (empty) this head takes the stored one
    // (Start fails NotFound when there is none) and makes it this
    // process's; with one given, it must equal the stored one (Start fails
    // FailedPrecondition saying so), or is stored when none is. A store
    // that does not outlive the head keeps nothing.
    std::string* cluster_token = nullptr;
    // This incarnation of the head ("": a random one). Its actor leases and
    // bundle prepares carry it; a node that re-registers holding what an
    // earlier incarnation asked for and this one does not know is told to
    // release it.
    std::string epoch;
    // Task records kept per job for the state API (TaskStore).
    int64_t max_tasks_per_job = 100000;
    // Dead actors kept for the state API; past it the oldest are erased
    // from memory and storage.
    size_t max_dead_actors = 10000;
    // Dead nodes and ended jobs kept likewise.
    size_t max_dead_nodes = 1000;
    size_t max_finished_jobs = 10000;
    // The Prometheus discovery file ("": <session_dir>/prometheus_sd.json,
    // or none without a session directory) and the head's own metrics
    // endpoint listed in it (HOST:PORT; "": not listed).
    std::string metrics_sd_file;
    std::string metrics_target;
  };
  GcsServer(Options options, Metrics* metrics);
  ~GcsServer();

  // Loads every table from the store (the load phase), then serves; an
  // error when the store cannot be read.
  absl::Status Start();
  void Stop();

  EventLoop& loop() { return loop_; }
  // Thread-safe: its handlers run off the loop.
  TaskStore& tasks() { return tasks_; }
  const ActorManager& actors() const { return actors_; }  // on the loop
  TransferLog& transfers() { return transfers_; }
  // Jobs submitted over HTTP (job_api.h); on the loop only.
  JobManager& submissions() { return submissions_; }

  void HandleRegisterNode(const rpc::RegisterNodeRequest& req,
                          rpc::RegisterNodeReply* reply, Done done);
  void HandleHeartbeat(const rpc::HeartbeatRequest& req,
                       rpc::HeartbeatReply* reply, Done done);
  void HandleUnregisterNode(const rpc::UnregisterNodeRequest& req,
                            rpc::UnregisterNodeReply* reply, Done done);
  void HandleScheduleLease(const rpc::ScheduleLeaseRequest& req,
                           rpc::ScheduleLeaseReply* reply, Done done);
  void HandleGetClusterStatus(const rpc::GetClusterStatusRequest& req,
                              rpc::GetClusterStatusReply* reply, Done done);
  void HandleKvPut(const rpc::KvPutRequest& req, rpc::KvPutReply* reply,
                   Done done);
  void HandleKvGet(const rpc::KvGetRequest& req, rpc::KvGetReply* reply,
                   Done done);
  void HandleKvDel(const rpc::KvDelRequest& req, rpc::KvDelReply* reply,
                   Done done);
  void HandleKvKeys(const rpc::KvKeysRequest& req, rpc::KvKeysReply* reply,
                    Done done);
  // The job's owner is the caller (roles.h): a submitter may stop and kill
  // only what its own jobs made. A job started, or a refused one, goes to
  // the audit log; the same driver asking again (after a slow answer, or to
  // name its node) starts none and is not logged.
  void HandleAddJob(const rpc::AddJobRequest& req, rpc::AddJobReply* reply,
                    Done done,
                    const Identity& who = {kClusterName, Role::kAdmin, ""},
                    const std::string& peer = "");
  void HandleReportWorkerDeath(const rpc::ReportWorkerDeathRequest& req,
                               rpc::ReportWorkerDeathReply* reply, Done done);
  void HandleMarkJobFinished(const rpc::MarkJobFinishedRequest& req,
                             rpc::MarkJobFinishedReply* reply, Done done);
  void HandleGetJobs(const rpc::GetJobsRequest& req, rpc::GetJobsReply* reply,
                     Done done);
  void HandleUpdateObjectLocations(const rpc::UpdateObjectLocationsRequest& req,
                                   rpc::UpdateObjectLocationsReply* reply,
                                   Done done);
  void HandleGetObjectLocations(const rpc::GetObjectLocationsRequest& req,
                                rpc::GetObjectLocationsReply* reply, Done done);
  void HandlePollEvents(const rpc::PollEventsRequest& req,
                        rpc::PollEventsReply* reply, Done done);
  // Worker output (see log_channel.h).
  void HandlePublishLogs(const rpc::PublishLogsRequest& req,
                         rpc::PublishLogsReply* reply, Done done);
  void HandlePollLogs(const rpc::PollLogsRequest& req,
                      rpc::PollLogsReply* reply, Done done);
  // Asks every alive raylet to publish the job's lines now (FlushLogs on
  // the raylet) and answers when all did or the timeout passed.
  void HandleFlushLogs(const rpc::FlushLogsRequest& req,
                       rpc::FlushLogsReply* reply, Done done);
  // `loom logs`: a node's log files, listed and read by asking its raylet
  // (src/gcs/log_files.cc).
  void HandleListLogs(const rpc::ListLogsRequest& req,
                      rpc::ListLogsReply* reply, Done done);
  // The files of those of `node_ids` alive, each asked of its raylet at
  // once (a raylet that does not answer has its error in its entry).
  void ListLogsOf(const std::vector<std::string>& node_ids,
                  rpc::ListLogsReply* reply, Done done);
  void HandleReadLog(const rpc::ReadLogRequest& req, rpc::ReadLogReply* reply,
                     Done done);
  // Each named node's GetNodeStats, asked of its raylet (node_stats_calls.cc),
  // in the order named; a node that is not alive, or did not answer within
  // 5 s, has its id in node.node_id and why in errors[i].
  // Answers from peers asked at once: errors[i] says why call i failed
  // ("" when it did not).
  template <typename Reply>
  struct PeerReplies {
    std::vector<Reply> replies;
    std::vector<std::string> errors;
  };
  using NodeStatsReplies = PeerReplies<rpc::GetNodeStatsReply>;
  void AskNodeStats(const std::vector<std::string>& node_ids,
                    std::function<void(NodeStatsReplies)> done);
  // How objects are referenced, asked of their owners (core workers at
  // host:port) at once: one reply per owner, each for its ids; an owner
  // that did not answer within 2 s has why in errors[i].
  using ReferenceReplies = PeerReplies<rpc::GetReferencesReply>;
  void AskReferences(
      const std::vector<std::pair<std::string, std::vector<std::string>>>&
          owners_ids,
      std::function<void(ReferenceReplies)> done);
  void HandleRegisterActor(const rpc::RegisterActorRequest& req,
                           rpc::RegisterActorReply* reply, Done done) {
    tasks_.NameActor(req.creation().actor_id(), req.class_name());
    actors_.HandleRegisterActor(req, reply, std::move(done));
  }
  void HandleGetActor(const rpc::GetActorRequest& req,
                      rpc::GetActorReply* reply, Done done) {
    actors_.HandleGetActor(req, reply, std::move(done));
  }
  // A submitter kills only its own jobs' actors.
  void HandleKillActor(const rpc::KillActorRequest& req,
                       rpc::KillActorReply* reply, Done done,
                       const Identity& who = {kClusterName, Role::kAdmin, ""});
  // Whether the job (binary id) was started by the token `name`.
  bool Owns(const std::string& name, const std::string& job_id) const;
  // PermissionDenied unless `who` may act on what the job (binary id; ""
  // unknown) made: an admin, or the token that started it. `what` names
  // the action ("kill the actors").
  absl::Status MayTouch(const Identity& who, const std::string& job,
                        const std::string& what) const;
  // People's tokens and the audit log (roles.h): on the loop, and
  // thread-safe, respectively.
  TokenTable& tokens() { return tokens_; }
  AuditLog& audit() { return audit_; }
  void HandleListActors(const rpc::ListActorsRequest& req,
                        rpc::ListActorsReply* reply, Done done) {
    actors_.HandleListActors(req, reply, std::move(done));
  }
  void HandleCreatePlacementGroup(const rpc::CreatePlacementGroupRequest& req,
                                  rpc::CreatePlacementGroupReply* reply,
                                  Done done) {
    groups_.HandleCreate(req, reply, std::move(done));
  }
  void HandleGetPlacementGroup(const rpc::GetPlacementGroupRequest& req,
                               rpc::GetPlacementGroupReply* reply, Done done) {
    groups_.HandleGet(req, reply, std::move(done));
  }
  // A submitter removes only its own jobs' groups.
  void HandleRemovePlacementGroup(const rpc::RemovePlacementGroupRequest& req,
                                  rpc::RemovePlacementGroupReply* reply,
                                  Done done,
                                  const Identity& who = {kClusterName,
                                                         Role::kAdmin, ""});
  // A raylet says a submitted job's entrypoint ended.
  void HandleReportEntrypointExit(const rpc::ReportEntrypointExitRequest& req,
                                  rpc::ReportEntrypointExitReply* reply,
                                  Done done) {
    submissions_.OnEntrypointExit(req);
    done(absl::OkStatus());
  }
  void HandleListPlacementGroups(const rpc::ListPlacementGroupsRequest& req,
                                 rpc::ListPlacementGroupsReply* reply,
                                 Done done) {
    groups_.HandleList(req, reply, std::move(done));
  }

 private:
  struct ObjectEntry {
    absl::flat_hash_set<NodeId> nodes;
    int64_t size = 0;
  };
  // Reads the head's tables back from the store (on the caller's thread),
  // then gives them to the tables (Apply, on the loop).
  absl::Status Load();
  absl::Status Apply(const StoreClient::Table& jobs,
                     const StoreClient::Table& nodes,
                     const StoreClient::Table& fenced,
                     const StoreClient::Table& actors,
                     const StoreClient::Table& groups,
                     const StoreClient::Table& submissions);
  // See Options::cluster_token; `stored` is meta/token.
  absl::Status SettleToken(const std::optional<std::string>& stored);
  // Saves next_job_, then runs `then`.
  void SaveJobCounter(std::function<void()> then);
  void CheckTimeoutsPeriodically();
  void OnNodeDead(const NodeId& node);
  // The job ended: its polls are answered, its lines go a little later.
  void ForgetLogsLater(const std::string& job_id);
  // The job (RUNNING until now) ended: saved, published, its actors and
  // groups told; kept as history.
  // Per-job quotas (gcs_quotas.cc). A new job's quota: its submission's,
  // for a driver a submission started (it names it); else what it asks.
  absl::StatusOr<rpc::JobQuota> QuotaForJob(const rpc::AddJobRequest& req);
  absl::Status AdmitActor(const std::string& job_id);
  // A job's info for GetJobs: with its use over all nodes, under a quota.
  rpc::JobInfo WithUse(const rpc::JobInfo& job) const;
  void EndJob(rpc::JobInfo& job, rpc::JobInfo::State state,
              const std::string& why);
  void UpdateGauges();

  Options options_;
  std::string epoch_;  // see Options::epoch
  EventLoop loop_;
  absl::Status store_status_;  // connecting to options_.storage
  std::unique_ptr<StoreClient> own_store_;
  StoreClient* store_;
  Publisher publisher_;
  NodeTable nodes_;
  GlobalScheduler scheduler_{&nodes_};
  // Freed memory back to the kernel, from the periodic tick.
  MemoryTrim trim_;
  ClientPool clients_{
      ClientPool::Options::ForDaemon()};  // outgoing calls: raylets, actors'
                                          // workers
  ActorManager actors_{&loop_,
                       &nodes_,
                       &publisher_,
                       &scheduler_,
                       &clients_,
                       store_,
                       options_.max_dead_actors};
  PlacementGroupManager groups_{&loop_, &nodes_, &actors_, &clients_, store_};
  JobManager submissions_{JobManager::Options{&loop_, &nodes_, &clients_,
                                              store_, options_.session_dir}};
  // The next job's number; saved before a job id is handed out, and never
  // below the clock's floor (see FirstJobNumber), so that ids never repeat
  // across restarts of the head.
  uint32_t next_job_ = 1;
  QuotaBook quotas_;

  absl::flat_hash_map<uint32_t, rpc::JobInfo> jobs_;
  BoundedHistory<uint32_t> finished_jobs_;
  absl::flat_hash_map<ObjectId, ObjectEntry> objects_;
  LogChannel logs_;
  TaskStore tasks_;
  TransferLog transfers_;
  CallsInFlight log_flushes_;  // FlushLogs to raylets
  CallsInFlight log_reads_;    // ListLogFiles, ReadLogFile, GetNodeStats
  TokenTable tokens_;
  AuditLog audit_;
  HeadMetrics head_metrics_;
  absl::Time metrics_refreshed_ = absl::InfinitePast();
  // When the periodic check last ran, and when it should run next at the
  // latest (after its delay and slack): running much later, the loop had
  // stalled somewhere since the last run.
  absl::Time check_ran_ = absl::InfinitePast();
  absl::Time check_due_ = absl::InfiniteFuture();
  bool stalled_last_check_ = false;

  prometheus::Gauge& nodes_alive_;
  prometheus::Gauge& nodes_dead_;
  prometheus::Gauge& jobs_running_;
  prometheus::Counter& heartbeats_;
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_GCS_SERVER_H_
