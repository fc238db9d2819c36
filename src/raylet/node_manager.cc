#include "src/raylet/node_manager.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "src/common/process.h"
#include "src/common/rpc.h"
#include "src/common/version.h"
#include "src/common/wire.h"

namespace loom::raylet {
namespace {

// See PendingLease::join_failures.
constexpr int kMaxJoinFailures = 3;

constexpr absl::Duration kTickPeriod = absl::Milliseconds(100);
// A request the head said to wait for (its placement group is being placed)
// asks the head again after this long.
constexpr absl::Duration kHeadRecheck = absl::Seconds(1);

}  // namespace

rpc::Resources NonNegative(const ResourceSet& set) {
  rpc::Resources proto;
  for (const auto& [name, qty] : set.quantities()) {
    if (qty > FixedPoint())
      (*proto.mutable_quantities())[name] = qty.ToDouble();
  }
  return proto;
}

NodeManager::NodeManager(Options options, Metrics* metrics)
    : options_(std::move(options)),
      loop_("raylet", options_.clock),
      resources_(options_.total),
      queue_(LeaseQueue::Options{options_.infeasible_grace}),
      metrics_(metrics),
      leases_granted_(metrics->Counter("loom_leases_granted_total",
                                       "Worker leases granted")),
      spillbacks_(metrics->Counter("loom_lease_spillbacks_total",
                                   "Lease requests sent to another node")),
      infeasible_(metrics->Counter("loom_lease_infeasible_total",
                                   "Lease requests failed as infeasible")),
      head_placed_(metrics->Counter(
          "loom_lease_head_placed_total",
          "Lease requests this node could not place that the head placed")),
      queue_length_(metrics->Gauge("loom_lease_queue_length",
                                   "Lease requests waiting on this node")),
      store_capacity_(
          metrics->Gauge("loom_object_store_capacity_bytes",
                         "Bytes of the node's shared-memory arena")),
      store_used_(metrics->Gauge("loom_object_store_used_bytes",
                                 "Bytes held by objects in the arena")),
      store_objects_(metrics->Gauge("loom_object_store_objects",
                                    "Objects in the node's store")),
      tasks_submitted_(
          metrics->Counter("loom_tasks_submitted_total",
                           "Tasks submitted by core workers here")),
      tasks_finished_(metrics->Counter("loom_tasks_finished_total",
                                       "Tasks that ran to a value here")),
      tasks_failed_(metrics->Counter("loom_tasks_failed_total",
                                     "Tasks that ended in an error")),
      tasks_retried_(
          metrics->Counter("loom_tasks_retried_total",
                           "Task attempts retried after a worker died")),
      memory_kills_(metrics->Counter(
          "loom_memory_monitor_kills_total",
          "Workers the memory monitor killed for lack of memory")),
      memory_used_(
          metrics->Gauge("loom_memory_monitor_used_bytes",
                         "Memory in use as the memory monitor measures it")) {
  node_metrics_ = std::make_unique<NodeMetrics>(NodeMetrics::Options{
      .metrics = metrics, .disk_path = options_.session_dir});
  entrypoints_ = std::make_unique<Entrypoints>(
      Entrypoints::Options{.loop = &loop_,
                           .clients = &clients_,
                           .resources = &resources_,
                           .gcs_address = options_.gcs_address,
                           .session_dir = options_.session_dir,
                           .node_id = options_.node_id.Binary()});
}

NodeManager::~NodeManager() { Stop(); }

static absl::Status ValidateRuntime(const rpc::WorkerRuntime& runtime) {
  if (runtime.language() == rpc::WorkerRuntime::CPP) return absl::OkStatus();
  if (runtime.language() != rpc::WorkerRuntime::PYTHON) {
    return absl::InvalidArgumentError("unknown worker language");
  }
  const std::string& exe = runtime.python_executable();
  if (exe.empty() || exe[0] != '/' || access(exe.c_str(), X_OK) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "python_executable '", exe, "' is not an executable absolute path"));
  }
  if (runtime.python_path_size() > 4096 || runtime.cwd().empty()) {
    return absl::InvalidArgumentError("python_path too long or cwd missing");
  }
  return absl::OkStatus();
}

absl::Status NodeManager::Start(absl::Duration register_timeout) {
  watch_ = std::make_unique<ProcessWatch>([this](pid_t pid) {
    loop_.Post([this, pid] {
      pool_->NoteExited(pid);
      ReapEnded();
    });
  });
  pool_ = std::make_unique<WorkerPool>(WorkerPool::Options{
      options_.worker_binary, options_.session_dir,
      absl::StrCat(options_.host, ":", options_.port), options_.host,
      options_.prestart_workers, options_.idle_worker_timeout, options_.clock,
      metrics_, options_.gcs_address, watch_.get(),
      [this](std::function<void()> fn) { loop_.Post(std::move(fn)); },
      [this](const std::string& key, const std::string& why) {
        FailRuntime(key, why);
      },
      /*max_starting=*/0, options_.worker_niceness});
  gcs_ = std::make_unique<GcsLink>(GcsLink::Options{
      options_.gcs_address, &loop_, SelfInfo(), options_.heartbeat_period,
      [this](rpc::HeartbeatRequest* r) { FillHeartbeat(r); },
      [this](const rpc::HeartbeatReply& r) { OnView(r); },
      [this](const rpc::RegisterNodeReply& reply) {
        view_version_ = 0;  // a new head's view comes whole
        if (object_manager_) object_manager_->ReReportCopies();
        ReleaseUnknown(reply);
      },
      [this](const absl::Status& why) { OnRefused(why); },
      [this](rpc::RegisterNodeRequest* req) { FillHeld(req); }});
  absl::Status s = gcs_->RegisterBlocking(register_timeout);
  if (!s.ok()) return s;
  loop_.Start();
  loop_.Post([this] {
    pool_->Prestart();
    Tick();
    CheckMemory();
  });
  gcs_->StartHeartbeats();
  HeadEvents::Options events{&loop_, &clients_, options_.gcs_address};
  events.on_event = [this](const rpc::Event& e) {
    if (e.kind() == rpc::Event::JOB_FINISHED) {
      OnJobFinished(e.id(), e.address());
    }
    if (e.kind() == rpc::Event::NODE_DEAD) OnNodeDead(e.id());
    if (e.kind() == rpc::Event::WORKER_DEAD) OnRemoteWorkerDead(e);
    if (e.kind() == rpc::Event::JOB_STARTED &&
        ValidateRuntime(e.runtime()).ok()) {
      pool_->PrestartForkServer(e.runtime());
    }
  };
  // Only what it acts on: actors' states do not wake it.
  events.kinds = {rpc::Event::JOB_FINISHED, rpc::Event::NODE_DEAD,
                  rpc::Event::WORKER_DEAD, rpc::Event::JOB_STARTED};
  head_events_ = std::make_unique<HeadEvents>(std::move(events));
  head_events_->Start();
  if (!options_.session_dir.empty()) {
    logs_ = std::make_unique<LogMonitor>(
        LogMonitor::Options{options_.session_dir + "/logs", options_.host,
                            options_.gcs_address, &clients_, metrics_});
    logs_->Start();
  }
  return absl::OkStatus();
}

void NodeManager::HandleFlushLogs(const rpc::FlushJobLogsRequest& req,
                                  rpc::FlushJobLogsReply* reply, Done done) {
  auto job = ParseId<JobId>(req.job_id(), "job_id");
  if (!job.ok()) return done(job.status());
  if (!logs_) return done(absl::OkStatus());  // no session: no files
  logs_->Flush(*job, std::move(done));        // done on the monitor's thread
}

void NodeManager::OnRefused(const absl::Status& why) {
  // Fenced: its actors may run elsewhere now and its tasks were retried, so
  // nothing here may run on. The workers go first, then the process, at
  // once.
  pool_->KillAll();
  bool mismatch = IsVersionMismatch(why);
  if (!mismatch && options_.restart_when_fenced) {
    spdlog::critical("fenced by the head, restarting as a new node: {}",
                     std::string(why.message()));
    spdlog::default_logger()->flush();
    options_.restart_when_fenced();
  }
  spdlog::critical("{} by the head, exiting: {}",
                   mismatch ? "refused" : "fenced", std::string(why.message()));
  spdlog::default_logger()->flush();
  std::fprintf(stderr, "loom-raylet: %s\n", std::string(why.message()).c_str());
  std::_Exit(mismatch ? kVersionMismatchExitCode : kFencedExitCode);
}

void NodeManager::Stop() {
  if (!pool_) return;
  if (head_events_) head_events_->Shutdown();
  if (logs_) logs_->Stop();
  loop_.RunSync([this] {
    gcs_->Unregister();
    pool_->KillAll();
    entrypoints_->KillAll();
  });
  loop_.Stop();
  pool_.reset();
}

rpc::NodeInfo NodeManager::SelfInfo() const {
  rpc::NodeInfo info;
  info.set_node_id(options_.node_id.Binary());
  info.set_host(options_.host);
  info.set_raylet_port(options_.port);
  info.set_metrics_port(options_.metrics_port);
  *info.mutable_total() = ResourcesToProto(options_.total);
  info.set_pid(getpid());
  info.set_session_dir(options_.session_dir);
  for (const auto& [k, v] : options_.labels) (*info.mutable_labels())[k] = v;
  return info;
}

// A lease request's strategy, with locality: by default it prefers the node
// holding its arguments, if that node can run it now.
static absl::StatusOr<Strategy> LeaseStrategy(const rpc::LeaseRequest& req) {
  auto strategy = StrategyFromProto(req.strategy());
  if (!strategy.ok() || req.preferred_node_id().empty() ||
      strategy->kind != Strategy::kDefault) {
    return strategy;
  }
  auto node = ParseId<NodeId>(req.preferred_node_id(), "preferred_node_id");
  if (!node.ok()) return node.status();
  strategy->kind = Strategy::kNodeAffinity;
  strategy->node_id = req.preferred_node_id();
  strategy->soft = true;
  strategy->locality = true;
  return strategy;
}

void NodeManager::HandleRequestWorkerLease(const rpc::LeaseRequest& req,
                                           rpc::LeaseReply* reply, Done done,
                                           std::function<bool()> abandoned) {
  if (gcs_) gcs_->Active();
  auto job = ParseId<JobId>(req.job_id(), "job_id");
  if (!job.ok()) return done(job.status());
  WorkerId requester;
  if (!req.requester_worker_id().empty()) {
    auto r =
        ParseId<WorkerId>(req.requester_worker_id(), "requester_worker_id");
    if (!r.ok()) return done(r.status());
    requester = *r;
  }
  auto demand = ResourcesFromProto(req.resources());
  if (!demand.ok()) return done(demand.status());
  if (req.code_search_path_size() > 1024) {
    return done(absl::InvalidArgumentError("code_search_path too long"));
  }
  if (absl::Status s = ValidateRuntime(req.runtime()); !s.ok()) return done(s);
  auto strategy = LeaseStrategy(req);
  if (!strategy.ok()) return done(strategy.status());
  uint64_t handle = next_handle_++;
  pending_[handle] = PendingLease{req,       reply, std::move(done),     *job,
                                  requester, 0,     std::move(abandoned)};
  queue_.Add(handle, *demand, !req.no_spillback(), options_.clock->Now(),
             *std::move(strategy));
  Dispatch();
}

void NodeManager::Dispatch() {
  quotas_.BeginPass();
  for (LeaseDecision& d : queue_.Schedule(
           options_.clock->Now(), resources_, others_,
           LocalNode{options_.node_id.Binary(), options_.labels}, &job_gate_)) {
    auto it = pending_.find(d.handle);
    if (it == pending_.end()) continue;
    PendingLease& p = it->second;
    switch (d.kind) {
      case LeaseDecision::kAskHead:
        AskHead(d.handle, p.req);
        continue;
      case LeaseDecision::kGrant:
        AddBundleGpus(&d.allocation);
        waiting_for_worker_.push_back(Grant{d.handle, std::move(d.allocation)});
        continue;
      case LeaseDecision::kSpillback:
        p.reply->set_outcome(rpc::LeaseReply::SPILLBACK);
        p.reply->set_spillback_host(d.target->host);
        p.reply->set_spillback_port(d.target->port);
        p.reply->set_spillback_may_spill(d.may_spill);
        spillbacks_.Increment();
        if (auto demand = ResourcesFromProto(p.req.resources()); demand.ok()) {
          spill_debits_[d.target->node_id].push_back(
              {*std::move(demand), options_.clock->Now()});
        }
        break;
      case LeaseDecision::kInfeasible:
        Infeasible(p, d.message);
        break;
    }
    p.done(absl::OkStatus());
    pending_.erase(it);
  }
  AssignWorkers();
  queue_length_.Set(queue_.size() + waiting_for_worker_.size());
  // A job started after the head's last answer: is it under a quota?
  if (quotas_.AnyUnknown()) gcs_->HeartbeatSoon();
}

void NodeManager::Infeasible(PendingLease& p, const std::string& message) {
  p.reply->set_outcome(rpc::LeaseReply::INFEASIBLE);
  p.reply->set_message(message);
  infeasible_.Increment();
  spdlog::warn("{}", message);
}

void NodeManager::AskHead(uint64_t handle, const rpc::LeaseRequest& lease) {
  rpc::ScheduleLeaseRequest req;
  *req.mutable_resources() = lease.resources();
  *req.mutable_strategy() = lease.strategy();
  req.set_preferred_node_id(lease.preferred_node_id());
  req.set_from_node_id(options_.node_id.Binary());
  gcs_->ScheduleLease(std::move(req), [this, handle](
                                          absl::Status s,
                                          const rpc::ScheduleLeaseReply& r) {
    if (!s.ok()) {
      spdlog::debug("the head could not place a lease: {}", s.ToString());
    }
    // The head (which would know of a node that joined) cannot say
    // yet: no infeasibility clock until it does.
    if (absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s)) {
      return queue_.WaitForHead(handle, options_.clock->Now() + kHeadRecheck);
    }
    auto it = pending_.find(handle);
    bool never = s.ok() && !r.infeasible().empty();
    bool elsewhere =
        s.ok() && r.placed() && r.node().node_id() != options_.node_id.Binary();
    if ((!never && !elsewhere) || it == pending_.end() ||
        !queue_.Remove(handle)) {
      // Its group's bundle comes (the head's table may be a heartbeat
      // behind this node's own), or decided here again.
      if (s.ok() && r.wait()) {
        return queue_.WaitForHead(handle, options_.clock->Now() + kHeadRecheck);
      }
      queue_.HeadAnswered(handle);
      return Dispatch();
    }
    PendingLease& p = it->second;
    if (never) {
      Infeasible(p, "infeasible: " + r.infeasible());
    } else {
      p.reply->set_outcome(rpc::LeaseReply::SPILLBACK);
      p.reply->set_spillback_host(r.node().host());
      p.reply->set_spillback_port(r.node().raylet_port());
      spillbacks_.Increment();
      head_placed_.Increment();
    }
    p.done(absl::OkStatus());
    pending_.erase(it);
    queue_length_.Set(queue_.size() + waiting_for_worker_.size());
  });
}

void NodeManager::AssignWorkers() {
  // Per runtime: workers still needed, and the runtime to start them in.
  std::map<std::string, std::pair<int, const rpc::WorkerRuntime*>> need;
  for (auto it = waiting_for_worker_.begin();
       it != waiting_for_worker_.end();) {
    const PendingLease& p = pending_.at(it->handle);
    std::string key = RuntimeKey(p.req.runtime());
    Worker* w = pool_->PopIdle(p.job, it->allocation.gpu_ids, key);
    if (w == nullptr) {
      auto& n = need[key];
      ++n.first;
      n.second = &p.req.runtime();
      ++it;
      continue;
    }
    Assign(w, it->handle, std::move(it->allocation));
    it = waiting_for_worker_.erase(it);
  }
  for (const auto& [key, n] : need) {
    int starting = pool_->CountStarting(key);
    if (n.first <= starting) continue;
    absl::Status s = pool_->StartWorkers(n.first - starting, *n.second);
    // C++ workers that fail to spawn are tried again on the next tick,
    // unless the node is out of processes or descriptors.
    if (s.ok() || (key.empty() && !absl::IsResourceExhausted(s))) continue;
    FailRuntime(key, std::string(s.message()));
  }
}

void NodeManager::FailRuntime(const std::string& key, const std::string& why) {
  // No worker of this runtime can start: its leases fail, saying why.
  std::vector<uint64_t> doomed;
  for (const Grant& g : waiting_for_worker_) {
    if (RuntimeKey(pending_.at(g.handle).req.runtime()) == key) {
      doomed.push_back(g.handle);
    }
  }
  for (uint64_t h : doomed) Cancel(h, why);
}

void NodeManager::Assign(Worker* worker, uint64_t handle,
                         Allocation allocation) {
  const PendingLease& p = pending_.at(handle);
  Lease lease{LeaseId::FromRandom(), worker->id,    p.requester,     p.job,
              std::move(allocation), ResourceSet(), p.req.detached()};
  lease.actor = p.req.actor();
  lease.retriable = p.req.retriable();
  lease.head_epoch = p.req.head_epoch();
  lease.granted = options_.clock->Now();
  worker->detached = p.req.detached();
  LeaseId lease_id = lease.id;
  JobAssignment assignment{
      p.job,
      {p.req.code_search_path().begin(), p.req.code_search_path().end()},
      lease.allocation.gpu_ids,
      lease_id,
      worker->control_key,
      lease.allocation.resources.Cpus()};
  lease_of_worker_[worker->id] = lease_id;
  leases_[lease_id] = std::move(lease);
  int port = worker->port;
  WorkerId wid = worker->id;
  workers_.AssignJob(
      wid, absl::StrCat(options_.host, ":", port), assignment,
      [this, handle, lease_id, port, wid](absl::Status s) {
        loop_.Post([this, handle, lease_id, port, wid, s] {
          auto pit = pending_.find(handle);
          auto lit = leases_.find(lease_id);
          if (pit == pending_.end()) {  // requester gone meanwhile
            if (lit != leases_.end()) ReleaseLease(lease_id, false);
            return;
          }
          PendingLease& p = pit->second;
          if (p.Abandoned()) {  // nobody would use or return it
            ReleaseLease(lease_id, false);
            Abandon(handle);
            return Dispatch();
          }
          // The worker died meanwhile, or as it joined (the call broke
          // rather than the worker refusing): a system failure, so the
          // request waits for another worker, unless workers keep dying
          // as they join (code that crashes its process as it loads).
          bool broke = !s.ok() && !absl::IsInvalidArgument(s) &&
                       !absl::IsFailedPrecondition(s) && !absl::IsNotFound(s) &&
                       !absl::IsPermissionDenied(s);
          if (lit == leases_.end() ||
              (broke && ++p.join_failures <= kMaxJoinFailures)) {
            if (lit != leases_.end()) ReleaseLease(lease_id, true);
            auto demand = ResourcesFromProto(p.req.resources());
            queue_.Add(handle, *demand, !p.req.no_spillback(),
                       options_.clock->Now(), *LeaseStrategy(p.req));
            return Dispatch();
          }
          if (s.ok()) {
            p.reply->set_outcome(rpc::LeaseReply::GRANTED);
            rpc::Address* a = p.reply->mutable_worker();
            a->set_host(options_.host);
            a->set_port(port);
            a->set_worker_id(wid.Binary());
            a->set_node_id(options_.node_id.Binary());
            p.reply->set_lease_id(lease_id.Binary());
            for (int g : lit->second.allocation.gpu_ids)
              p.reply->add_gpu_ids(g);
            leases_granted_.Increment();
            // An actor's worker is called again only when its lease ends:
            // a channel kept would wake both ends for its keepalive.
            if (lit->second.actor) workers_.Idle(wid);
          } else {
            spdlog::warn("worker could not join job: {}", s.ToString());
            ReleaseLease(lease_id, true);
            p.reply->set_outcome(rpc::LeaseReply::REJECTED);
            p.reply->set_message(
                absl::StrCat("worker could not join the job: ", s.message()));
          }
          p.done(absl::OkStatus());
          pending_.erase(pit);
        });
      });
}

void NodeManager::ReleaseLease(const LeaseId& id, bool kill_worker) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  Lease& lease = it->second;
  resources_.Release(lease.allocation);
  GiveBack(lease.job, lease.allocation, lease.lent);
  if (!lease.lent.IsEmpty()) resources_.Reclaim(lease.lent);
  lease_of_worker_.erase(lease.worker);
  std::optional<Worker> killed;
  if (Worker* w = pool_->Find(lease.worker)) {
    if (kill_worker) {
      killed = *w;
      workers_.Forget(w->id);
      pool_->Kill(w->id);
    } else {
      // Pushes under this lease are refused from now on.
      workers_.EndLease(w->id, lease.id, w->control_key);
      pool_->PushIdle(w);
    }
  }
  leases_.erase(it);
  if (killed) {
    // What the killed worker leased or asked for (an actor's nested tasks)
    // goes with it, as when a worker dies by itself.
    FreeWhere([&](const WorkerId& requester,
                  const JobId&) { return requester == killed->id; },
              "the requesting worker was stopped");
    // Killed by the memory monitor (the only deaths recorded): the head
    // records why (an actor's death cause).
    auto d = deaths_.find(id);
    ReportGone(*killed, d == deaths_.end()
                            ? std::string()
                            : "out of memory: " + d->second.message());
  }
  Dispatch();
}

bool NodeManager::TakeBack(uint64_t handle) {
  queue_.Remove(handle);
  for (auto it = waiting_for_worker_.begin(); it != waiting_for_worker_.end();
       ++it) {
    if (it->handle == handle) {
      resources_.Release(it->allocation);
      if (auto p = pending_.find(handle); p != pending_.end()) {
        quotas_.Give(p->second.job, it->allocation.resources);
      }
      waiting_for_worker_.erase(it);
      break;
    }
  }
  return pending_.contains(handle);
}

void NodeManager::Cancel(uint64_t handle, const std::string& why) {
  if (!TakeBack(handle)) return;
  PendingLease& p = pending_.at(handle);
  p.reply->set_outcome(rpc::LeaseReply::REJECTED);
  p.reply->set_message(why);
  p.done(absl::OkStatus());
  pending_.erase(handle);
}

void NodeManager::Abandon(uint64_t handle) {
  if (!TakeBack(handle)) return;
  pending_.at(handle).done(absl::DeadlineExceededError(
      "the caller's deadline came before a worker was ready"));
  pending_.erase(handle);
}

void NodeManager::HandleReturnWorker(const rpc::ReturnWorkerRequest& req,
                                     rpc::ReturnWorkerReply* reply, Done done) {
  if (gcs_) gcs_->Active();
  auto id = ParseId<LeaseId>(req.lease_id(), "lease_id");
  if (!id.ok()) return done(id.status());
  // A worker this raylet killed: its owner learns why.
  if (auto d = deaths_.find(*id); d != deaths_.end()) {
    *reply->mutable_death() = d->second;
  }
  if (!leases_.contains(*id)) {
    return done(reply->has_death() ? absl::OkStatus()
                                   : absl::NotFoundError("unknown lease"));
  }
  ReleaseLease(*id, req.worker_failed());
  done(absl::OkStatus());
}

void NodeManager::HandleRegisterWorker(const rpc::RegisterWorkerRequest& req,
                                       rpc::RegisterWorkerReply* reply,
                                       Done done) {
  auto id = ParseId<WorkerId>(req.worker_id(), "worker_id");
  if (!id.ok()) return done(id.status());
  auto w = pool_->Register(*id, req.pid(), req.port(), req.control_key());
  if (!w.ok()) return done(w.status());
  reply->set_node_id(options_.node_id.Binary());
  done(absl::OkStatus());
  AssignWorkers();
}

void NodeManager::HandleRegisterDriver(const rpc::RegisterDriverRequest& req,
                                       rpc::RegisterDriverReply* reply,
                                       Done done) {
  auto job = ParseId<JobId>(req.job_id(), "job_id");
  if (!job.ok()) return done(job.status());
  auto id = ParseId<WorkerId>(req.worker_id(), "worker_id");
  if (!id.ok()) return done(id.status());
  if (req.pid() <= 0 || req.pid() > (1 << 30)) {
    return done(absl::InvalidArgumentError("pid out of range"));
  }
  if (absl::Status s = ValidateRuntime(req.runtime()); !s.ok()) return done(s);
  drivers_[*id] = Driver{*job, static_cast<pid_t>(req.pid())};
  watch_->Watch(static_cast<pid_t>(req.pid()));  // else the tick polls it
  reply->set_node_id(options_.node_id.Binary());
  rpc::WorkerRuntime runtime = req.runtime();
  // Its job's quota holds here before the driver puts anything.
  WhenQuotaKnown(*job, [done = std::move(done)] { done(absl::OkStatus()); });
  // `req` is gone from here on.
  // A Python driver's first tasks find workers of its runtime started.
  std::string key = RuntimeKey(runtime);
  if (!key.empty() && pool_->CountRuntime(key) == 0) {
    pool_->StartWorkers(options_.prestart_workers, runtime).IgnoreError();
  }
}

void NodeManager::HandleNotifyBlocked(const rpc::NotifyBlockedRequest& req,
                                      rpc::NotifyBlockedReply* reply,
                                      Done done) {
  auto id = ParseId<WorkerId>(req.worker_id(), "worker_id");
  if (!id.ok()) return done(id.status());
  auto lit = lease_of_worker_.find(*id);
  if (lit == lease_of_worker_.end()) {
    return done(absl::NotFoundError("worker holds no lease"));
  }
  Lease& lease = leases_.at(lit->second);
  if (req.blocked() && lease.lent.IsEmpty()) {
    lease.lent.Set(kCpu, lease.allocation.resources.Get(kCpu));
    resources_.Lend(lease.lent);
    quotas_.Give(lease.job, lease.lent);
    Dispatch();
  } else if (!req.blocked() && !lease.lent.IsEmpty()) {
    resources_.Reclaim(lease.lent);
    quotas_.Take(lease.job, lease.lent);
    lease.lent = ResourceSet();
  }
  done(absl::OkStatus());
}

void NodeManager::HandleReportTaskStats(const rpc::ReportTaskStatsRequest& req,
                                        rpc::ReportTaskStatsReply* reply,
                                        Done done) {
  constexpr int64_t kMax = int64_t{1} << 40;
  for (int64_t v :
       {req.submitted(), req.finished(), req.failed(), req.retried()}) {
    if (v < 0 || v > kMax) {
      return done(
          absl::InvalidArgumentError("task counts must be in [0, 2^40]"));
    }
  }
  tasks_submitted_.Increment(req.submitted());
  tasks_finished_.Increment(req.finished());
  tasks_failed_.Increment(req.failed());
  tasks_retried_.Increment(req.retried());
  if (req.metrics_size() > 0) node_metrics_->AddUserPoints(req.metrics());
  if (!req.worker_id().empty()) {
    auto id = ParseId<WorkerId>(req.worker_id(), "worker_id");
    if (!id.ok()) return done(id.status());
    if (Worker* w = pool_->Find(*id)) w->holds_objects = req.live_objects() > 0;
  }
  done(absl::OkStatus());
}

void NodeManager::HandleGetNodeStats(const rpc::GetNodeStatsRequest& req,
                                     rpc::GetNodeStatsReply* reply, Done done) {
  *reply->mutable_node() = SelfInfo();
  *reply->mutable_node()->mutable_available() =
      NonNegative(resources_.available());
  reply->set_workers_idle(pool_->CountState(Worker::kIdle));
  reply->set_workers_leased(pool_->CountState(Worker::kLeased));
  reply->set_workers_starting(pool_->CountState(Worker::kStarting));
  reply->set_queued_leases(queue_.size() + waiting_for_worker_.size());
  if (node_metrics_) node_metrics_->FillHost(reply->mutable_host());
  for (const Worker* w : pool_->All()) {
    rpc::WorkerSummary* out = reply->add_workers();
    out->set_worker_id(w->id.Binary());
    out->set_pid(w->pid);
    out->set_state(w->state == Worker::kStarting ? "STARTING"
                   : w->state == Worker::kIdle   ? "IDLE"
                                                 : "LEASED");
    if (w->job) out->set_job_id(w->job->Binary());
    out->set_language(w->runtime.empty() ? "CPP" : "PYTHON");
    out->set_started_ms(absl::ToUnixMillis(w->started));
    out->set_detached(w->detached);
  }
  if (object_manager_) {
    auto usage = object_manager_->Usage();
    if (usage.ok()) {
      reply->set_store_capacity(usage->capacity);
      reply->set_store_used(usage->used);
      reply->set_store_objects(usage->objects);
      reply->set_store_pinned(usage->pinned);
      reply->set_store_spilled_bytes(usage->spilled_bytes);
      reply->set_store_spilled_objects(usage->spilled_objects);
      for (const auto& o : usage->largest) {
        rpc::ObjectSummary* s = reply->add_largest_objects();
        s->set_object_id(o.id.Binary());
        s->set_size(o.size);
        s->set_owner(o.owner);
        s->set_primary(o.primary);
        s->set_pinned(o.pinned);
      }
    }
  }
  done(absl::OkStatus());
}

bool NodeManager::Quiet() const {
  return queue_.size() == 0 && waiting_for_worker_.empty() &&
         !pool_->AnyStarting() && !pool_->ExitsPending() &&
         !entrypoints_->Busy();
}

void NodeManager::DropAbandoned() {
  std::vector<uint64_t> abandoned;
  for (const auto& [handle, p] : pending_) {
    if (p.Abandoned()) abandoned.push_back(handle);
  }
  for (uint64_t h : abandoned) Abandon(h);
}

void NodeManager::Tick() {
  ReapEnded();
  DropAbandoned();
  pool_->Maintain();
  entrypoints_->Reap();
  clients_.DropIdle();
  trim_.Maybe(absl::Now());
  Dispatch();
  if (options_.object_store) {
    auto stats = options_.object_store->stats();
    store_capacity_.Set(static_cast<double>(stats.capacity));
    store_used_.Set(static_cast<double>(stats.used));
    store_objects_.Set(static_cast<double>(stats.objects));
  }
  PublishMetrics();
  // A quiet node ticks when the loop wakes anyway (heartbeats), at the
  // latest two seconds later: an idle raylet does not wake ten times a
  // second. A job's entrypoint running here keeps it ticking (its end is
  // reaped within 100 ms).
  auto next = [this, chain = ++tick_chain_] {
    if (chain == tick_chain_) Tick();
  };
  if (Quiet()) {
    loop_.PostLazy(kTickPeriod, kQuietSlack, next);
  } else {
    loop_.PostAfter(kTickPeriod, next);
  }
}

void NodeManager::TickSoon() {
  loop_.Post([this, chain = ++tick_chain_] {
    if (chain == tick_chain_) Tick();
  });
}

void NodeManager::PublishMetrics() {
  absl::Time now = absl::Now();
  if (now - metrics_published_ < absl::Seconds(1)) return;
  metrics_published_ = now;
  node_metrics_->PublishResources(resources_.total(), resources_.available());
  if (options_.object_store) {
    auto stats = options_.object_store->stats();
    node_metrics_->PublishStore(stats.used, stats.spilled_bytes);
  }
}

std::optional<std::string> NodeManager::AddressOf(const NodeId& node) const {
  absl::MutexLock lock(&addresses_mu_);
  auto it = addresses_.find(node);
  if (it == addresses_.end()) return std::nullopt;
  return it->second;
}

void NodeManager::HandlePullObject(const rpc::PullObjectRequest& req,
                                   rpc::PullObjectReply* reply, Done done) {
  auto id = ParseId<ObjectId>(req.object_id(), "object_id");
  if (!id.ok()) return done(id.status());
  auto source = ParseId<NodeId>(req.source_node_id(), "source_node_id");
  if (!source.ok()) return done(source.status());
  if (object_manager_ == nullptr) {
    return done(absl::FailedPreconditionError("this node has no object store"));
  }
  object_manager_->Pull(*id, *source, std::move(done));
}

absl::Status NodeManager::HandleReadObjectChunk(
    const rpc::ReadObjectChunkRequest& req, grpc::ByteBuffer* reply) {
  if (object_manager_ == nullptr) {
    return absl::FailedPreconditionError("this node has no object store");
  }
  return object_manager_->ReadChunk(req, reply);
}

void NodeManager::HandleFreeObjects(const rpc::FreeObjectsRequest& req,
                                    rpc::FreeObjectsReply* reply, Done done) {
  if (object_manager_ == nullptr) {
    return done(absl::FailedPreconditionError("this node has no object store"));
  }
  if (req.object_ids_size() > 100000 || req.node_ids_size() > 10000) {
    return done(absl::InvalidArgumentError("too many ids in one request"));
  }
  done(object_manager_->Free(req));
}

}  // namespace loom::raylet
