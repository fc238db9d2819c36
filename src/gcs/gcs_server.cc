#include "src/gcs/gcs_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "proto/raylet.grpc.pb.h"
#include "src/common/auth.h"
#include "src/common/quota_text.h"
#include "src/common/rpc.h"
#include "src/common/session.h"
#include "src/common/wire.h"
#include "src/gcs/redis_store.h"

namespace loom::gcs {
namespace {

constexpr size_t kMaxKeyBytes = 4096;
constexpr size_t kMaxValueBytes = 64 << 20;

// A random incarnation id (8 bytes).
std::string NewEpoch() {
  absl::BitGen gen;
  uint64_t v = absl::Uniform<uint64_t>(gen);
  return std::string(reinterpret_cast<const char*>(&v), sizeof(v));
}

absl::Status CheckKey(const std::string& ns, const std::string& key) {
  if (key.empty()) return absl::InvalidArgumentError("empty key");
  if (key.size() > kMaxKeyBytes || ns.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(
        "key or namespace longer than 4096 bytes");
  }
  return absl::OkStatus();
}

std::string KvTable(const std::string& ns) { return "kv:" + ns; }

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

// The least job number a head starting at `now` hands out: quarter seconds
// since 2026-01-01 (fits 32 bits until 2060). A head that restarted with
// nothing saved starts above every number its predecessor gave out unless
// that one averaged more than 4 jobs a second over its whole life; the
// saved counter (storage, or the session directory) covers that case.
uint32_t JobNumberFloor(absl::Time now) {
  constexpr int64_t kEpochMs = int64_t{1767225600} * 1000;
  int64_t q = (absl::ToUnixMillis(now) - kEpochMs) / 250;
  return static_cast<uint32_t>(std::clamp<int64_t>(q, 1, int64_t{1} << 31));
}

// The store named by `url`; on failure an in-memory one, with `status`
// saying why (Start reports it).
std::unique_ptr<StoreClient> OpenStore(const std::string& url, EventLoop* loop,
                                       absl::Status* status) {
  auto store = MakeStoreClient(url, loop);
  if (store.ok()) return std::move(*store);
  *status = store.status();
  return std::make_unique<InMemoryStoreClient>();
}

constexpr char kMeta[] = "meta";
constexpr char kNextJob[] = "next_job";
constexpr char kToken[] = "token";

// Events published within this go to each subscriber in one reply (pubsub.h):
// killing 1,000 actors publishes thousands, each answered to every raylet.
constexpr absl::Duration kEventGather = absl::Milliseconds(20);
// How late the periodic check (node timeouts, idle channels, gauges) may
// run when nothing else wakes the loop and no node is about to time out.
constexpr absl::Duration kMaxCheckSlack = absl::Seconds(2);
// The periodic check running this much later than it could have: the
// loop stalled (the head stopped, starved of CPU, a VM paused), and the
// nodes' silence over that stretch is excused (NodeTable::Excuse).
constexpr absl::Duration kLoopStall = absl::Seconds(1);

}  // namespace

GcsServer::GcsServer(Options options, Metrics* metrics)
    : options_(options),
      epoch_(options.epoch.empty() ? NewEpoch() : options.epoch),
      loop_("gcs", options.clock),
      own_store_(options.store
                     ? nullptr
                     : OpenStore(options.storage, &loop_, &store_status_)),
      store_(options.store ? options.store : own_store_.get()),
      publisher_(&loop_, /*capacity=*/10000, kEventGather),
      nodes_(NodeTable::Options{store_, &publisher_, options.clock,
                                options.node_timeout,
                                [this](const NodeId& n) { OnNodeDead(n); },
                                options.version, options.max_dead_nodes}),
      finished_jobs_({.limit = options.max_finished_jobs,
                      .erase =
                          [this](uint32_t n) {
                            store_->Delete("jobs", JobId::FromInt(n).Binary(),
                                           [](absl::StatusOr<bool>) {});
                            jobs_.erase(n);
                          }}),
      logs_(LogChannel::Options{
          &loop_, LogChannel::kMaxBytesPerJob,
          &metrics->Counter("loom_gcs_log_lines_dropped_total",
                            "Worker output lines dropped because a job's "
                            "buffer at the head was full")}),
      tasks_(TaskStore::Options{options.max_tasks_per_job}),
      transfers_(TransferLog::Options{options.max_tasks_per_job}),
      tokens_(TokenTable::Options{store_, rpc::SetPeopleTokens, options.clock}),
      audit_(AuditLog::Options{.path = options.session_dir.empty()
                                           ? ""
                                           : options.session_dir + "/audit.log",
                               .clock = options.clock}),
      head_metrics_(HeadMetrics::Options{
          .metrics = metrics,
          .tasks = &tasks_,
          .sd_file = !options.metrics_sd_file.empty() ? options.metrics_sd_file
                     : options.session_dir.empty()
                         ? ""
                         : options.session_dir + "/prometheus_sd.json",
          .self_target = options.metrics_target}),
      nodes_alive_(metrics->Gauge("loom_gcs_nodes", "Nodes by state",
                                  {{"state", "alive"}})),
      nodes_dead_(metrics->Gauge("loom_gcs_nodes", "Nodes by state",
                                 {{"state", "dead"}})),
      jobs_running_(metrics->Gauge("loom_gcs_jobs_running", "Running jobs")),
      heartbeats_(metrics->Counter("loom_gcs_heartbeats_total",
                                   "Heartbeats received")) {
  actors_.set_head_epoch(epoch_);
  actors_.set_admit([this](const std::string& job) { return AdmitActor(job); });
  // Task recording is off for the cluster with LOOM_TASK_EVENTS=0 where
  // the daemons start (they pass it on to their workers).
  if (const char* events = std::getenv("LOOM_TASK_EVENTS");
      events == nullptr || std::string(events) != "0") {
    actors_.set_on_creation([this](const rpc::TaskEvent& e) {
      rpc::ReportTaskEventsRequest report;
      *report.add_events() = e;
      tasks_.Report(report);
    });
  }
  groups_.set_head_epoch(epoch_);
}

GcsServer::~GcsServer() { Stop(); }

absl::Status GcsServer::Start() {
  if (!store_status_.ok()) return store_status_;
  loop_.Start();
  if (auto s = Load(); !s.ok()) return s;
  loop_.Post([this] { CheckTimeoutsPeriodically(); });
  return absl::OkStatus();
}

namespace {

// Every row of `table`. The load phase reads on the caller's thread while
// the loop (where a remote store answers) runs.
absl::StatusOr<StoreClient::Table> ReadAll(StoreClient* store,
                                           const std::string& table) {
  absl::StatusOr<StoreClient::Table> out;
  absl::Notification answered;
  store->GetAll(table, [&](absl::StatusOr<StoreClient::Table> rows) {
    out = std::move(rows);
    answered.Notify();
  });
  answered.WaitForNotification();
  return out;
}

}  // namespace

absl::Status GcsServer::Load() {
  auto meta = ReadAll(store_, kMeta);
  if (!meta.ok()) return meta.status();
  uint32_t saved = 0;
  if (auto it = meta->find(kNextJob); it != meta->end()) {
    if (!absl::SimpleAtoi(it->second, &saved)) {
      return absl::DataLossError("meta/next_job is not a number");
    }
  }
  std::optional<std::string> stored_token;
  if (auto it = meta->find(kToken); it != meta->end()) {
    stored_token = it->second;
  }
  if (auto s = SettleToken(stored_token); !s.ok()) return s;
  if (!store_->durable() && !options_.session_dir.empty()) {
    auto text = ReadFileToString(options_.session_dir + "/gcs_next_job");
    uint32_t in_file = 0;
    if (text.ok() && absl::SimpleAtoi(*text, &in_file)) {
      saved = std::max(saved, in_file);
    }
  }
  auto jobs = ReadAll(store_, "jobs");
  if (!jobs.ok()) return jobs.status();
  auto nodes = ReadAll(store_, "nodes");
  if (!nodes.ok()) return nodes.status();
  auto fenced = ReadAll(store_, NodeTable::kFencedTable);
  if (!fenced.ok()) return fenced.status();
  auto actors = ReadAll(store_, "actors");
  if (!actors.ok()) return actors.status();
  auto groups = ReadAll(store_, "placement_groups");
  if (!groups.ok()) return groups.status();
  auto submissions = ReadAll(store_, "submissions");
  if (!submissions.ok()) return submissions.status();
  auto tokens = ReadAll(store_, TokenTable::kTable);
  if (!tokens.ok()) return tokens.status();
  absl::Status applied;
  loop_.RunSync([&] {
    next_job_ = std::max(saved, JobNumberFloor(absl::Now()));
    applied = Apply(*jobs, *nodes, *fenced, *actors, *groups, *submissions);
    if (applied.ok() && options_.cluster_token != nullptr) {
      applied = tokens_.Load(*tokens);  // none without auth: all is allowed
    }
  });
  if (!applied.ok()) return applied;
  if (!jobs->empty() || !nodes->empty() || !actors->empty()) {
    spdlog::info(
        "loaded {} jobs, {} nodes, {} actors, {} placement groups, {} job "
        "submissions; next job {}",
        jobs->size(), nodes->size(), actors->size(), groups->size(),
        submissions->size(), next_job_);
  }
  return absl::OkStatus();
}

absl::Status GcsServer::Apply(const StoreClient::Table& jobs,
                              const StoreClient::Table& nodes,
                              const StoreClient::Table& fenced,
                              const StoreClient::Table& actors,
                              const StoreClient::Table& groups,
                              const StoreClient::Table& submissions) {
  for (const auto& [key, value] : jobs) {
    rpc::JobInfo job;
    auto id = JobId::FromBinary(key);
    if (!id.ok() || !job.ParseFromString(value)) {
      return absl::DataLossError("a row of the jobs table does not parse");
    }
    if (job.state() == rpc::JobInfo::RUNNING) {
      logs_.Open(*id);
      quotas_.Start(key, job.quota());
    }
    jobs_[JobId(*id).ToInt()] = std::move(job);
  }
  // Ended jobs as history, oldest first.
  std::vector<std::pair<int64_t, uint32_t>> ended;
  for (const auto& [n, job] : jobs_) {
    if (job.state() != rpc::JobInfo::RUNNING)
      ended.emplace_back(job.end_ms(), n);
  }
  finished_jobs_.Load(std::move(ended));
  if (auto s = nodes_.Load(nodes, fenced); !s.ok()) return s;
  if (auto s = actors_.Load(actors); !s.ok()) return s;
  if (auto s = submissions_.Load(submissions); !s.ok()) return s;
  return groups_.Load(groups);
}

absl::Status GcsServer::SettleToken(const std::optional<std::string>& stored) {
  std::string* token = options_.cluster_token;
  if (token == nullptr) return absl::OkStatus();
  if (!store_->durable()) {
    if (token->empty()) return absl::NotFoundError("no cluster token");
    return absl::OkStatus();
  }
  if (token->empty()) {
    if (!stored) {
      return absl::NotFoundError(
          "no cluster token, and the head's storage "
          "holds none");
    }
    *token = *stored;
    rpc::SetClusterToken(*token);  // before any call of the load phase
    return absl::OkStatus();
  }
  if (stored) {
    if (!ConstantTimeEquals(*stored, *token)) {
      return absl::FailedPreconditionError(
          "this head's cluster token differs from the one its storage holds "
          "(the cluster's): start it with the cluster's token, or with none "
          "to take it from storage");
    }
    return absl::OkStatus();
  }
  absl::Notification saved;
  store_->Put(kMeta, kToken, *token, true,
              MustSave("the cluster token", [&] { saved.Notify(); }));
  saved.WaitForNotification();
  return absl::OkStatus();
}

void GcsServer::SaveJobCounter(std::function<void()> then) {
  if (!store_->durable() && !options_.session_dir.empty()) {
    auto s = WriteFileAtomic(options_.session_dir + "/gcs_next_job",
                             absl::StrCat(next_job_));
    if (!s.ok()) MustSave("the job counter")(s);
  }
  store_->Put(kMeta, kNextJob, absl::StrCat(next_job_), true,
              MustSave("the job counter", std::move(then)));
}

void GcsServer::Stop() {
  // No reply to a call of theirs reaches the managers after this.
  log_flushes_.Shutdown();
  log_reads_.Shutdown();
  groups_.Shutdown();
  actors_.Shutdown();
  submissions_.Shutdown();
  loop_.Stop();
}

void GcsServer::CheckTimeoutsPeriodically() {
  // Heartbeats are heard on this loop: while it stalled, none was, and the
  // nodes are not to blame. Without this a head that stalled for longer
  // than the node timeout declared every node dead and fenced them all.
  // When the stall began since the last run is not known: all of that
  // stretch is excused (a dead node is found at most period + slack later).
  // A loop late again at the next check is overloaded rather than stalled:
  // only the lateness is excused then, or a head always a second late would
  // never find a dead node.
  absl::Time now = loop_.clock()->Now();
  absl::Duration late = now - check_due_;
  bool stalled = late > kLoopStall;
  if (stalled) nodes_.Excuse(stalled_last_check_ ? late : now - check_ran_);
  stalled_last_check_ = stalled;
  check_ran_ = now;
  absl::Time next_timeout = nodes_.CheckTimeouts();
  clients_.DropIdle();
  trim_.Maybe(absl::Now());
  UpdateGauges();
  // Rides on the loop's other wakeups (the nodes' heartbeats): an idle
  // head does not wake on its own while its nodes heartbeat, yet wakes when
  // the next node could time out, so a silent one is found at once.
  absl::Duration period =
      std::min(absl::Milliseconds(200), options_.node_timeout / 5);
  absl::Duration until = next_timeout - loop_.clock()->Now();
  absl::Duration slack =
      std::clamp(until - period, absl::ZeroDuration(), kMaxCheckSlack);
  check_due_ = loop_.clock()->Now() + period + slack;
  loop_.PostLazy(period, slack, [this] { CheckTimeoutsPeriodically(); });
}

void GcsServer::UpdateGauges() {
  size_t alive = nodes_.alive_count();
  nodes_alive_.Set(alive);
  nodes_dead_.Set(nodes_.size() - alive);
  size_t running = 0;
  for (const auto& [id, job] : jobs_)
    running += job.state() == rpc::JobInfo::RUNNING;
  jobs_running_.Set(running);
  // Actors, groups and the discovery file: once a second is enough.
  absl::Time now = absl::Now();
  if (now - metrics_refreshed_ < absl::Seconds(1)) return;
  metrics_refreshed_ = now;
  std::vector<rpc::NodeInfo> alive_nodes;
  for (const NodeState& n : nodes_.alive()) {
    alive_nodes.push_back(*nodes_.Find(n.node_id));
  }
  head_metrics_.Refresh(actors_.CountByState(), groups_.CountByState(),
                        alive_nodes);
}

void GcsServer::OnNodeDead(const NodeId& node) {
  if (const rpc::NodeInfo* info = nodes_.Find(node.Binary())) {
    clients_.Drop(RayletAddress(*info));
  }
  actors_.OnNodeDead(node.Binary());
  quotas_.OnNodeDead(node.Binary());
  groups_.OnNodeDead(node.Binary());
  submissions_.OnNodeDead(node.Binary());
  for (auto it = objects_.begin(); it != objects_.end();) {
    it->second.nodes.erase(node);
    if (it->second.nodes.empty()) {
      objects_.erase(it++);
    } else {
      ++it;
    }
  }
  // Drivers on a dead node are gone with it.
  std::vector<uint32_t> lost;
  for (auto& [n, job] : jobs_) {
    if (job.state() == rpc::JobInfo::RUNNING &&
        job.node_id() == node.Binary()) {
      lost.push_back(n);
    }
  }
  for (uint32_t n : lost) {
    EndJob(jobs_.at(n), rpc::JobInfo::DRIVER_DIED, "node died");
  }
}

void GcsServer::EndJob(rpc::JobInfo& job, rpc::JobInfo::State state,
                       const std::string& why) {
  job.set_state(state);
  job.set_end_ms(NowMs());
  quotas_.End(job.job_id());
  store_->Put("jobs", job.job_id(), job.SerializeAsString(), true,
              MustSave("a job"));
  publisher_.Publish(rpc::Event::JOB_FINISHED, job.job_id(), why,
                     job.driver_address());
  actors_.OnJobFinished(job.job_id());
  ForgetLogsLater(job.job_id());
  groups_.OnJobFinished(job.job_id());
  uint32_t n = JobId(*JobId::FromBinary(job.job_id())).ToInt();
  spdlog::info("job {} {}", n, why);
  finished_jobs_.Ended(n);  // may erase the oldest (not this one)
}

void GcsServer::HandleRegisterNode(const rpc::RegisterNodeRequest& req,
                                   rpc::RegisterNodeReply* reply, Done done) {
  reply->set_heartbeat_timeout_ms(absl::ToInt64Milliseconds(nodes_.timeout()));
  absl::Status s = nodes_.Register(
      req.node(), Version{req.protocol_version(), req.build_version()});
  if (s.ok()) {
    // What an earlier head asked this node for and never saved (it died
    // first): nobody will use or return it.
    std::string raylet = RayletAddress(req.node());
    absl::flat_hash_set<std::string> leases;
    for (const rpc::HeldForHead& held : req.held()) {
      if (!held.lease_id().empty()) leases.insert(held.lease_id());
      if (held.head_epoch() == epoch_) continue;
      bool known = held.lease_id().empty()
                       ? groups_.HoldsBundle(held.pg_id(), held.index(),
                                             req.node().node_id())
                       : actors_.HoldsLease(raylet, held.lease_id());
      if (!known) *reply->add_release() = held;
    }
    // And what this head asked for that the node no longer holds: those
    // actors' processes ended while it could not tell the head.
    actors_.OnNodeRegistered(req.node().node_id(), leases);
  }
  done(s);
}

void GcsServer::HandleScheduleLease(const rpc::ScheduleLeaseRequest& req,
                                    rpc::ScheduleLeaseReply* reply, Done done) {
  // A bundle's demand: a removed group's never runs, a live group's waits
  // for the bundle where no node offers it now.
  std::string why;
  auto group = groups_.GroupOf(req.resources(), &why);
  if (group == PlacementGroupManager::DemandGroup::kGone) {
    reply->set_infeasible(why);
    return done(absl::OkStatus());
  }
  reply->set_wait(group == PlacementGroupManager::DemandGroup::kLive);
  done(scheduler_.ScheduleLease(req, reply));
}

void GcsServer::HandleHeartbeat(const rpc::HeartbeatRequest& req,
                                rpc::HeartbeatReply* reply, Done done) {
  heartbeats_.Increment();
  absl::Status s = nodes_.Heartbeat(req, reply);
  if (s.ok()) {
    reply->set_next_job(next_job_);
    quotas_.OnHeartbeat(req, reply);
  }
  done(s);
}

void GcsServer::HandleUnregisterNode(const rpc::UnregisterNodeRequest& req,
                                     rpc::UnregisterNodeReply* reply,
                                     Done done) {
  done(nodes_.Unregister(req.node_id()));
}

void GcsServer::HandleGetClusterStatus(const rpc::GetClusterStatusRequest& req,
                                       rpc::GetClusterStatusReply* reply,
                                       Done done) {
  nodes_.ForEach([reply](const rpc::NodeInfo& n) { *reply->add_nodes() = n; });
  reply->set_erased_dead(nodes_.erased_dead());
  reply->set_max_dead(static_cast<int64_t>(nodes_.max_dead()));
  done(absl::OkStatus());
}

void GcsServer::HandleKvPut(const rpc::KvPutRequest& req,
                            rpc::KvPutReply* reply, Done done) {
  if (auto s = CheckKey(req.ns(), req.key()); !s.ok()) return done(s);
  if (req.value().size() > kMaxValueBytes) {
    return done(absl::InvalidArgumentError("value larger than 64 MiB"));
  }
  store_->Put(KvTable(req.ns()), req.key(), req.value(), req.overwrite(),
              [reply, done](absl::StatusOr<bool> added) {
                if (added.ok()) reply->set_added(*added);
                done(added.status());
              });
}

void GcsServer::HandleKvGet(const rpc::KvGetRequest& req,
                            rpc::KvGetReply* reply, Done done) {
  if (auto s = CheckKey(req.ns(), req.key()); !s.ok()) return done(s);
  store_->Get(KvTable(req.ns()), req.key(),
              [reply, done](absl::StatusOr<std::optional<std::string>> v) {
                if (v.ok() && v->has_value()) {
                  reply->set_found(true);
                  reply->set_value(**v);
                }
                done(v.status());
              });
}

void GcsServer::HandleKvDel(const rpc::KvDelRequest& req,
                            rpc::KvDelReply* reply, Done done) {
  if (auto s = CheckKey(req.ns(), req.key()); !s.ok()) return done(s);
  store_->Delete(KvTable(req.ns()), req.key(),
                 [reply, done](absl::StatusOr<bool> deleted) {
                   if (deleted.ok()) reply->set_deleted(*deleted);
                   done(deleted.status());
                 });
}

void GcsServer::HandleKvKeys(const rpc::KvKeysRequest& req,
                             rpc::KvKeysReply* reply, Done done) {
  store_->Keys(KvTable(req.ns()), req.prefix(),
               [reply, done](absl::StatusOr<std::vector<std::string>> keys) {
                 if (keys.ok()) {
                   for (auto& k : *keys) reply->add_keys(std::move(k));
                 }
                 done(keys.status());
               });
}

void GcsServer::HandleAddJob(const rpc::AddJobRequest& req,
                             rpc::AddJobReply* reply, Done answer,
                             const Identity& who, const std::string& peer) {
  Done done = [this, who, peer, reply, pid = req.driver_pid(),
               answer](absl::Status status) {
    audit_.Append(who, peer, "AddJob",
                  absl::StrCat("job ", HexEncode(reply->job_id()),
                               " (driver pid ", pid, ")"),
                  status);
    answer(status);
  };
  if (req.driver_pid() <= 0) {
    return done(absl::InvalidArgumentError("driver_pid must be positive"));
  }
  if (req.driver_address().size() > 256) {
    return done(absl::InvalidArgumentError("driver_address: too long"));
  }
  if (req.runtime().ByteSizeLong() > (1 << 20)) {
    return done(absl::InvalidArgumentError("runtime: over 1 MiB"));
  }
  if (!req.node_id().empty()) {
    auto node = ParseId<NodeId>(req.node_id(), "node_id");
    if (!node.ok()) return done(node.status());
  }
  auto quota = QuotaForJob(req);
  if (!quota.ok()) return done(quota.status());
  // The same driver asking again (its first call timed out on a busy
  // head, or it names its node, learned from its raylet since) gets the job
  // it has, once that is saved.
  if (!req.driver_address().empty()) {
    for (auto& [n, job] : jobs_) {
      if (job.state() == rpc::JobInfo::RUNNING &&
          job.driver_address() == req.driver_address() &&
          job.driver_pid() == req.driver_pid()) {
        if (job.node_id().empty()) job.set_node_id(req.node_id());
        store_->Put("jobs", job.job_id(), job.SerializeAsString(), true,
                    MustSave("a job", [reply, answer, id = job.job_id(),
                                       quota = job.quota()] {
                      reply->set_job_id(id);
                      *reply->mutable_quota() = quota;
                      answer(absl::OkStatus());
                    }));
        return;
      }
    }
  }
  uint32_t n = next_job_++;
  rpc::JobInfo& job = jobs_[n];
  job.set_job_id(JobId::FromInt(n).Binary());
  job.set_state(rpc::JobInfo::RUNNING);
  job.set_driver_pid(req.driver_pid());
  job.set_node_id(req.node_id());
  job.set_driver_address(req.driver_address());
  job.set_owner(who.name);
  job.set_start_ms(NowMs());
  if (submissions_.Get(req.submission_id()).ok()) {
    job.set_submission_id(req.submission_id());
  }
  *job.mutable_quota() = *quota;
  quotas_.Start(job.job_id(), *quota);
  logs_.Open(JobId::FromInt(n));
  spdlog::info("job {} started by driver pid {} (quota: {})", n,
               req.driver_pid(),
               HasLimits(*quota) ? DescribeQuota(*quota) : "none");
  if (req.runtime().language() == rpc::WorkerRuntime::PYTHON) {
    // Every node starts a fork server for its workers now, not at its
    // first task.
    rpc::Event e;
    e.set_kind(rpc::Event::JOB_STARTED);
    e.set_id(job.job_id());
    *e.mutable_runtime() = req.runtime();
    publisher_.Publish(std::move(e));
  }
  // The id goes out only once the counter past it is saved: a head that
  // restarts never hands it out again.
  SaveJobCounter([] {});
  store_->Put(
      "jobs", job.job_id(), job.SerializeAsString(), true,
      MustSave("a job", [reply, done, id = job.job_id(), quota = *quota] {
        reply->set_job_id(id);
        *reply->mutable_quota() = quota;
        done(absl::OkStatus());
      }));
}

bool GcsServer::Owns(const std::string& name, const std::string& job_id) const {
  auto id = JobId::FromBinary(job_id);
  if (!id.ok()) return false;
  auto it = jobs_.find(JobId(*id).ToInt());
  return it != jobs_.end() && it->second.owner() == name;
}

absl::Status GcsServer::MayTouch(const Identity& who, const std::string& job,
                                 const std::string& what) const {
  if (who.role >= Role::kAdmin || job.empty() || Owns(who.name, job)) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "the token \"", who.name, "\" has the role ", RoleName(who.role),
      ", which may ", what, " only of jobs it started; this one is another's"));
}

void GcsServer::HandleKillActor(const rpc::KillActorRequest& req,
                                rpc::KillActorReply* reply, Done done,
                                const Identity& who) {
  auto id = ParseId<ActorId>(req.actor_id(), "actor_id");
  if (!id.ok()) return done(id.status());
  absl::Status may = MayTouch(who, actors_.JobOf(*id), "kill the actors");
  if (!may.ok()) return done(may);
  actors_.HandleKillActor(req, reply, std::move(done));
}

void GcsServer::HandleRemovePlacementGroup(
    const rpc::RemovePlacementGroupRequest& req,
    rpc::RemovePlacementGroupReply* reply, Done done, const Identity& who) {
  auto id = ParseId<PlacementGroupId>(req.pg_id(), "pg_id");
  if (!id.ok()) return done(id.status());
  absl::Status may =
      MayTouch(who, groups_.JobOf(*id), "remove the placement groups");
  if (!may.ok()) return done(may);
  groups_.HandleRemove(req, reply, std::move(done));
}

void GcsServer::HandleMarkJobFinished(const rpc::MarkJobFinishedRequest& req,
                                      rpc::MarkJobFinishedReply* reply,
                                      Done done) {
  auto id = ParseId<JobId>(req.job_id(), "job_id");
  if (!id.ok()) return done(id.status());
  auto it = jobs_.find(id->ToInt());
  if (it == jobs_.end()) return done(absl::NotFoundError("unknown job"));
  if (it->second.state() == rpc::JobInfo::RUNNING) {
    EndJob(
        it->second,
        req.driver_died() ? rpc::JobInfo::DRIVER_DIED : rpc::JobInfo::FINISHED,
        req.driver_died() ? "driver died" : "finished");
  }
  done(absl::OkStatus());
}

void GcsServer::HandleReportWorkerDeath(
    const rpc::ReportWorkerDeathRequest& req, rpc::ReportWorkerDeathReply*,
    Done done) {
  auto worker = ParseId<WorkerId>(req.worker_id(), "worker_id");
  if (!worker.ok()) return done(worker.status());
  auto job = ParseId<JobId>(req.job_id(), "job_id");
  if (!job.ok()) return done(job.status());
  if (req.address().size() > 256) {
    return done(absl::InvalidArgumentError("address: too long"));
  }
  if (req.cause().size() > 4096) {
    return done(absl::InvalidArgumentError("cause: too long"));
  }
  rpc::Event e;
  e.set_kind(rpc::Event::WORKER_DEAD);
  e.set_id(req.worker_id());
  e.set_address(req.address());
  e.set_job_id(req.job_id());
  publisher_.Publish(std::move(e));
  actors_.OnWorkerDead(req.worker_id(), req.cause());
  done(absl::OkStatus());
}

void GcsServer::HandleGetJobs(const rpc::GetJobsRequest& req,
                              rpc::GetJobsReply* reply, Done done) {
  for (const auto& [n, job] : jobs_) *reply->add_jobs() = WithUse(job);
  reply->set_erased_finished(finished_jobs_.erased());
  reply->set_max_finished(static_cast<int64_t>(finished_jobs_.limit()));
  done(absl::OkStatus());
}

void GcsServer::HandleUpdateObjectLocations(
    const rpc::UpdateObjectLocationsRequest& req,
    rpc::UpdateObjectLocationsReply* reply, Done done) {
  // Validate the whole batch before applying any of it.
  for (const auto& u : req.updates()) {
    auto obj = ParseId<ObjectId>(u.object_id(), "object_id");
    if (!obj.ok()) return done(obj.status());
    auto node = ParseId<NodeId>(u.node_id(), "node_id");
    if (!node.ok()) return done(node.status());
    if (u.size() < 0) return done(absl::InvalidArgumentError("negative size"));
  }
  for (const auto& u : req.updates()) {
    ObjectId obj = *ObjectId::FromBinary(u.object_id());
    NodeId node = *NodeId::FromBinary(u.node_id());
    if (u.added()) {
      ObjectEntry& e = objects_[obj];
      e.nodes.insert(node);
      e.size = u.size();
    } else if (auto it = objects_.find(obj); it != objects_.end()) {
      it->second.nodes.erase(node);
      if (it->second.nodes.empty()) objects_.erase(it);
    }
  }
  done(absl::OkStatus());
}

void GcsServer::HandleGetObjectLocations(
    const rpc::GetObjectLocationsRequest& req,
    rpc::GetObjectLocationsReply* reply, Done done) {
  auto obj = ParseId<ObjectId>(req.object_id(), "object_id");
  if (!obj.ok()) return done(obj.status());
  if (auto it = objects_.find(*obj); it != objects_.end()) {
    for (const NodeId& n : it->second.nodes) reply->add_node_ids(n.Binary());
    reply->set_size(it->second.size);
  }
  done(absl::OkStatus());
}

void GcsServer::HandlePollEvents(const rpc::PollEventsRequest& req,
                                 rpc::PollEventsReply* reply, Done done) {
  if (req.timeout_ms() < 0 || req.timeout_ms() > 60000) {
    return done(absl::InvalidArgumentError("timeout_ms must be in [0, 60000]"));
  }
  for (int kind : req.kinds()) {
    if (!rpc::Event::Kind_IsValid(kind)) {
      return done(absl::InvalidArgumentError(
          absl::StrCat("kinds: ", kind, " is not an event kind")));
    }
  }
  publisher_.Poll(req.after_seq(), Publisher::MaskOf(req.kinds()),
                  absl::Milliseconds(req.timeout_ms()),
                  [reply, done](std::vector<rpc::Event> events, int64_t last) {
                    for (auto& e : events) *reply->add_events() = std::move(e);
                    reply->set_last_seq(last);
                    done(absl::OkStatus());
                  });
}

}  // namespace loom::gcs
