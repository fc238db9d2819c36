#include "src/gcs/actor_manager.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proto/raylet.grpc.pb.h"
#include "proto/worker.grpc.pb.h"
#include "scheduler/resource_set.h"
#include "src/common/async_call.h"
#include "src/common/daemon.h"
#include "src/common/rpc.h"
#include "src/common/wire.h"

namespace loom::gcs {
namespace {

constexpr absl::Duration kRetry = absl::Milliseconds(200);

std::string NameKey(const std::string& ns, const std::string& name) {
  return ns + '\0' + name;
}

// A call that failed before any connection to its peer was made (gRPC's
// words for it): nothing of it ran there.
bool NeverConnected(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE &&
         absl::StrContains(s.error_message(),
                           "failed to connect to all addresses");
}

// How many leased workers that could not be reached an actor's creation
// passes over before it dies saying so.
constexpr int kUnreachableWorkers = 3;

}  // namespace

struct ActorManager::Actor {
  rpc::ActorInfo info;
  rpc::RegisterActorRequest spec;
  int64_t attempt = 0;    // each placement; stale replies check it
  bool stopping = false;  // killed: no restart
  std::string stop_reason = "killed by loom::Kill";  // its death cause then
  std::string raylet;  // the node's raylet holding the lease
  std::string lease_id;
  std::string worker_id;  // the leased worker's (in by_worker_)
  std::vector<std::pair<rpc::GetActorReply*, Done>> waiters;
  std::vector<Done> kills;      // answered once the process is gone
  int unreachable_workers = 0;  // passed over (kUnreachableWorkers)
  // Its creation task ended (ALIVE once, or loaded by a restarted head):
  // CreationEnded reports it once.
  bool created = false;
};

template <typename Req, typename Reply>
struct Call {
  rpc::Context ctx;
  Req req;
  Reply reply;
};

ActorManager::ActorManager(EventLoop* loop, NodeTable* nodes,
                           Publisher* publisher, GlobalScheduler* scheduler,
                           ClientPool* clients, StoreClient* store,
                           size_t max_dead)
    : loop_(loop),
      nodes_(nodes),
      publisher_(publisher),
      clients_(clients),
      scheduler_(scheduler),
      store_(store),
      dead_({.limit = max_dead,
             .erase = [this](const ActorId& id) { Erase(id); }}) {}

void ActorManager::Erase(const ActorId& id) {
  auto it = actors_.find(id);
  if (it == actors_.end() || it->second->info.state() != rpc::ActorInfo::DEAD) {
    return;
  }
  Bind(id, *it->second, "");
  actors_.erase(it);
  store_->Delete("actors", id.Binary(), MustSave("an erased actor"));
}

void ActorManager::Save(const Actor& a, std::function<void()> then) {
  rpc::ActorRecord record;
  *record.mutable_info() = a.info;
  *record.mutable_spec() = a.spec;
  record.set_raylet(a.raylet);
  record.set_lease_id(a.lease_id);
  store_->Put("actors", a.info.actor_id(), record.SerializeAsString(), true,
              MustSave("an actor", std::move(then)));
}

absl::Status ActorManager::Load(const StoreClient::Table& rows) {
  std::vector<ActorId> watch, place;
  for (const auto& [key, value] : rows) {
    rpc::ActorRecord record;
    auto id = ActorId::FromBinary(key);
    if (!id.ok() || !record.ParseFromString(value)) {
      return absl::DataLossError("a row of the actors table does not parse");
    }
    auto actor = std::make_unique<Actor>();
    actor->info = record.info();
    actor->spec = record.spec();
    actor->raylet = record.raylet();
    actor->lease_id = record.lease_id();
    // Task records are not kept across a head's restart: nor is this one's.
    actor->created = true;
    auto state = actor->info.state();
    if (state != rpc::ActorInfo::DEAD && !actor->info.name().empty()) {
      names_[NameKey(actor->info.ns(), actor->info.name())] = *id;
    }
    if (state == rpc::ActorInfo::ALIVE) {
      watch.push_back(*id);
    } else if (state != rpc::ActorInfo::DEAD) {
      place.push_back(*id);
    }
    actors_[*id] = std::move(actor);
  }
  // The dead in the order they died; past the limit the oldest go now.
  std::vector<std::pair<int64_t, ActorId>> dead;
  for (const auto& [id, a] : actors_) {
    if (a->info.state() == rpc::ActorInfo::DEAD) {
      dead.emplace_back(a->info.end_time_ms(), id);
    }
  }
  dead_.Load(std::move(dead));
  // Deaths while the head was away: each node tells what it still holds
  // when it registers again (OnNodeRegistered).
  for (const ActorId& id : watch) {
    Actor& a = *actors_[id];
    Bind(id, a, a.info.address().worker_id());
  }
  for (const ActorId& id : place) Schedule(id);
  return absl::OkStatus();
}

ActorManager::~ActorManager() = default;

void ActorManager::HandleRegisterActor(const rpc::RegisterActorRequest& req,
                                       rpc::RegisterActorReply* reply,
                                       Done done) {
  auto id = ParseId<ActorId>(req.creation().actor_id(), "actor_id");
  if (!id.ok()) return done(id.status());
  if (auto job = ParseId<JobId>(req.creation().job_id(), "job_id"); !job.ok()) {
    return done(job.status());
  }
  if (req.creation().function_name().empty()) {
    return done(absl::InvalidArgumentError("no factory function named"));
  }
  if (req.max_restarts() < -1) {
    return done(absl::InvalidArgumentError("max_restarts must be >= -1"));
  }
  if (auto demand = ResourcesFromProto(req.creation().resources());
      !demand.ok()) {
    return done(demand.status());
  }
  if (actors_.contains(*id)) {
    return done(absl::AlreadyExistsError("actor id registered twice"));
  }
  // An actor holds a couple of the head's descriptors (its worker's
  // connection in, a channel out): refused now rather than never reached.
  if (auto s =
          CheckDescriptorHeadroom(kDescriptorsPerActor, "the head", "an actor");
      !s.ok()) {
    return done(s);
  }
  bool existing = !req.name().empty() && req.get_if_exists() &&
                  names_.contains(NameKey(req.ns(), req.name()));
  if (admit_ && !existing) {
    if (auto s = admit_(req.creation().job_id()); !s.ok()) return done(s);
  }
  if (!req.name().empty()) {
    auto taken = names_.find(NameKey(req.ns(), req.name()));
    if (taken != names_.end()) {
      if (!req.get_if_exists()) {
        return done(absl::AlreadyExistsError(
            absl::StrCat("the actor name '", req.name(),
                         "' is taken in namespace '", req.ns(), "'")));
      }
      *reply->mutable_actor() = actors_[taken->second]->info;
      return done(absl::OkStatus());
    }
    names_[NameKey(req.ns(), req.name())] = *id;
  }
  auto actor = std::make_unique<Actor>();
  actor->spec = req;
  rpc::ActorInfo& info = actor->info;
  info.set_actor_id(id->Binary());
  info.set_class_name(req.class_name());
  info.set_name(req.name());
  info.set_ns(req.ns());
  info.set_state(rpc::ActorInfo::PENDING);
  info.set_max_restarts(req.max_restarts());
  info.set_max_task_retries(req.max_task_retries());
  info.set_max_pending_calls(req.max_pending_calls());
  info.set_handle_object(req.handle_object());
  info.set_owner(req.owner());
  info.set_detached(req.detached());
  info.set_job_id(req.creation().job_id());
  *reply->mutable_actor() = info;
  publisher_->Publish(rpc::Event::ACTOR_STATE, id->Binary(), "PENDING");
  Actor& saved = *actor;
  actors_[*id] = std::move(actor);
  spdlog::info("actor {} ({}) registered", id->Hex(), req.class_name());
  Schedule(*id);
  // Answered once saved: a head that restarts still knows it.
  Save(saved, [done] { done(absl::OkStatus()); });
}

void ActorManager::Schedule(const ActorId& id) {
  auto it = actors_.find(id);
  if (it == actors_.end()) return;
  Actor& a = *it->second;
  int64_t attempt = ++a.attempt;
  // An actor needs 1 CPU free to be placed (unless it names resources, or
  // its CPUs, even 0) and holds only what it names while it lives.
  ResourceSet placement = *ResourcesFromProto(a.spec.creation().resources());
  if (placement.IsEmpty() && !a.spec.exact_placement()) {
    placement.Set(kCpu, FixedPoint::FromInt(1));
  }
  // The head's scheduler picks among the alive, reachable nodes by the
  // creator's strategy (label selector, node affinity, SPREAD) and load.
  absl::Time now = absl::Now();
  auto node = scheduler_->Pick(
      placement,
      StrategyFromProto(a.spec.creation().strategy()).value_or(Strategy{}), "",
      [&](const NodeState& node) {
        auto u = unreachable_.find(node.node_id);
        if (u == unreachable_.end()) return false;
        if (u->second > now) return true;
        unreachable_.erase(u);
        return false;
      });
  if (!node) return RetryLater(id, attempt);  // nothing fits now
  // What the actor holds while it lives counts there at once.
  scheduler_->Debit(node->node_id(),
                    *ResourcesFromProto(a.spec.creation().resources()));
  Lease(id, attempt, *node);
}

int64_t ActorManager::CountAlive(const std::string& job_id) const {
  int64_t n = 0;
  for (const auto& [id, actor] : actors_) {
    n += actor->info.state() != rpc::ActorInfo::DEAD &&
         actor->info.job_id() == job_id;
  }
  return n;
}

bool ActorManager::HoldsLease(const std::string& raylet,
                              const std::string& lease_id) const {
  for (const auto& [id, a] : actors_) {
    if (a->raylet == raylet && a->lease_id == lease_id) return true;
  }
  return false;
}

void ActorManager::RetryLater(const ActorId& id, int64_t attempt) {
  loop_->PostAfter(kRetry, [this, id, attempt] {
    auto it = actors_.find(id);
    if (it == actors_.end() || it->second->attempt != attempt ||
        it->second->info.state() == rpc::ActorInfo::DEAD) {
      return;
    }
    Schedule(id);
  });
}

void ActorManager::Lease(const ActorId& id, int64_t attempt,
                         const rpc::NodeInfo& node) {
  Actor& a = *actors_[id];
  std::string raylet = RayletAddress(node);
  auto* call = new Call<rpc::LeaseRequest, rpc::LeaseReply>;
  call->req.set_job_id(a.spec.creation().job_id());
  *call->req.mutable_resources() = a.spec.creation().resources();
  call->req.set_no_spillback(true);
  call->req.set_detached(a.spec.detached());
  call->req.set_actor(true);
  call->req.set_head_epoch(head_epoch_);
  *call->req.mutable_code_search_path() = a.spec.code_search_path();
  *call->req.mutable_runtime() = a.spec.runtime();
  rpc::SetTimeout(&call->ctx, 30000);
  std::string node_id = node.node_id();
  if (!calls_.Start(&call->ctx)) return delete call;  // shutting down
  rpc::AsyncCall(
      *clients_->Stub<rpc::Raylet>(raylet),
      &rpc::Raylet::Stub::PrepareAsyncRequestWorkerLease, &call->ctx, call->req,
      &call->reply,
      [this, loop = loop_, call, id, attempt, raylet, node_id](grpc::Status s) {
        calls_.Finish(&call->ctx);
        loop->Post([this, call, id, attempt, raylet, node_id, s] {
          std::unique_ptr<Call<rpc::LeaseRequest, rpc::LeaseReply>> owned(call);
          auto it = actors_.find(id);
          bool granted =
              s.ok() && call->reply.outcome() == rpc::LeaseReply::GRANTED;
          if (it == actors_.end() || it->second->attempt != attempt ||
              it->second->info.state() == rpc::ActorInfo::DEAD) {
            if (granted) {  // not needed any more
              auto* ret =
                  new Call<rpc::ReturnWorkerRequest, rpc::ReturnWorkerReply>;
              ret->req.set_lease_id(call->reply.lease_id());
              ret->req.set_worker_failed(true);
              rpc::SetTimeout(&ret->ctx, 5000);
              if (!calls_.Start(&ret->ctx)) return delete ret;
              rpc::AsyncCall(*clients_->Stub<rpc::Raylet>(raylet),
                             &rpc::Raylet::Stub::PrepareAsyncReturnWorker,
                             &ret->ctx, ret->req, &ret->reply,
                             [this, ret](grpc::Status) {
                               calls_.Finish(&ret->ctx);
                               delete ret;
                             });
            }
            return;
          }
          if (!s.ok() &&
              s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
            unreachable_[node_id] = absl::Now() + nodes_->timeout();
          }
          if (s.ok() && call->reply.outcome() == rpc::LeaseReply::REJECTED) {
            // Its worker cannot start or join the job (code that does not
            // load, a runtime that fails): the same everywhere, so the
            // actor dies saying why instead of being retried forever, as
            // a task fails.
            return MarkDead(*it->second, "cannot start the actor's worker: " +
                                             call->reply.message());
          }
          if (!granted) {
            spdlog::info("actor {}: lease at {} not granted ({})", id.Hex(),
                         raylet,
                         s.ok() ? call->reply.message() : s.error_message());
            return RetryLater(id, attempt);
          }
          // Tests of a head that dies holding a lease it has not saved.
          if (const char* at = std::getenv("LOOM_TESTING_HEAD_EXIT_AT");
              at != nullptr && std::string(at) == "actor-lease") {
            _exit(9);
          }
          Actor& a = *it->second;
          a.raylet = raylet;
          a.lease_id = call->reply.lease_id();
          Bind(id, a, call->reply.worker().worker_id());
          a.info.set_node_id(node_id);
          Create(id, attempt, call->reply.worker(), raylet);
        });
      });
}

void ActorManager::Create(const ActorId& id, int64_t attempt,
                          const rpc::Address& worker,
                          const std::string& raylet) {
  Actor& a = *actors_[id];
  auto* call = new Call<rpc::PushTaskRequest, rpc::PushTaskReply>;
  *call->req.mutable_spec() = a.spec.creation();
  call->req.mutable_spec()->set_actor_creation(true);
  call->req.set_lease_id(a.lease_id);
  rpc::Address address = worker;
  if (!calls_.Start(&call->ctx)) return delete call;  // shutting down
  rpc::AsyncCall(
      *clients_->Stub<rpc::CoreWorker>(HostPort(worker)),
      &rpc::CoreWorker::Stub::PrepareAsyncPushTask, &call->ctx, call->req,
      &call->reply,
      [this, loop = loop_, call, id, attempt, address](grpc::Status s) {
        calls_.Finish(&call->ctx);
        loop->Post([this, call, id, attempt, address, s] {
          std::unique_ptr<Call<rpc::PushTaskRequest, rpc::PushTaskReply>> owned(
              call);
          auto it = actors_.find(id);
          if (it == actors_.end() || it->second->attempt != attempt) {
            return;
          }
          Actor& a = *it->second;
          if (!s.ok() && NeverConnected(s) && !a.stopping &&
              a.unreachable_workers < kUnreachableWorkers) {
            // The creation never reached that worker: another one is
            // leased, not counted as a restart (the constructor did
            // not run).
            ++a.unreachable_workers;
            spdlog::warn(
                "actor {}: its worker at {} could not be "
                "reached ({}); leasing another",
                id.Hex(), HostPort(address), s.error_message());
            Stop(a);
            Bind(id, a, "");
            clients_->Drop(HostPort(address));
            return Schedule(id);
          }
          if (!s.ok() && NeverConnected(s)) {
            return Died(id, attempt,
                        absl::StrCat("the actor's leased workers could "
                                     "not be reached (",
                                     a.unreachable_workers + 1,
                                     " in a row): ", s.error_message()));
          }
          if (!s.ok()) {
            return Died(id, attempt,
                        "the actor's process died while it was being "
                        "created: " +
                            s.error_message());
          }
          if (!call->reply.ok()) {
            a.stopping = true;  // its constructor fails: no restart
            Stop(a);
            return MarkDead(
                a, "the actor's factory failed: " + call->reply.error().type() +
                       ": " + call->reply.error().message());
          }
          if (a.stopping) {  // killed while being created
            Stop(a);
            return;
          }
          *a.info.mutable_address() = address;
          a.info.set_pid(call->reply.pid());
          a.info.set_state(rpc::ActorInfo::ALIVE);
          CreationEnded(a, "");
          spdlog::info("actor {} alive at {}", id.Hex(), HostPort(address));
          // The head calls an actor only to create it: a channel kept
          // would cost memory and a keepalive per actor.
          clients_->Drop(HostPort(address));
          Answer(a);
        });
      });
}

void ActorManager::Bind(const ActorId& id, Actor& a,
                        const std::string& worker_id) {
  if (!a.worker_id.empty()) by_worker_.erase(a.worker_id);
  a.worker_id = worker_id;
  if (!worker_id.empty()) by_worker_[worker_id] = id;
}

void ActorManager::OnWorkerDead(const std::string& worker_id,
                                const std::string& cause) {
  auto it = by_worker_.find(worker_id);
  if (it == by_worker_.end()) return;
  ActorId id = it->second;
  Died(id, actors_[id]->attempt,
       cause.empty()
           ? "the actor's process exited (its node's raylet saw it end)"
           : cause);
}

void ActorManager::OnNodeRegistered(
    const std::string& node_id,
    const absl::flat_hash_set<std::string>& held_leases) {
  std::vector<std::pair<ActorId, int64_t>> gone;
  for (const auto& [id, a] : actors_) {
    if (a->info.state() == rpc::ActorInfo::ALIVE &&
        a->info.node_id() == node_id && !held_leases.contains(a->lease_id)) {
      gone.emplace_back(id, a->attempt);
    }
  }
  for (const auto& [id, attempt] : gone) {
    Died(id, attempt,
         "the actor's process ended while its node was out of touch with "
         "the head");
  }
}

void ActorManager::Died(const ActorId& id, int64_t attempt,
                        const std::string& cause) {
  auto it = actors_.find(id);
  if (it == actors_.end() || it->second->attempt != attempt) return;
  Actor& a = *it->second;
  if (a.info.state() == rpc::ActorInfo::DEAD) return;
  Stop(a);  // frees the lease (and the process, if it lingers)
  Bind(id, a, "");
  clients_->Drop(HostPort(a.info.address()));
  a.info.clear_address();
  for (auto& done : a.kills) done(absl::OkStatus());  // it is gone
  a.kills.clear();
  if (a.stopping) return MarkDead(a, a.stop_reason);
  int max = a.info.max_restarts();
  if (max == -1 || a.info.num_restarts() < max) {
    a.info.set_num_restarts(a.info.num_restarts() + 1);
    a.info.set_restart_cause(cause);
    a.info.set_state(rpc::ActorInfo::RESTARTING);
    Answer(a);  // published; no caller waits on RESTARTING
    spdlog::info("actor {} restarting ({}): {}", id.Hex(),
                 a.info.num_restarts(), cause);
    return Schedule(id);
  }
  MarkDead(a, cause + (max > 0 ? "; its restarts are used up" : ""));
}

void ActorManager::Stop(Actor& a) {
  if (a.lease_id.empty()) return;
  auto* ret = new Call<rpc::ReturnWorkerRequest, rpc::ReturnWorkerReply>;
  ret->req.set_lease_id(a.lease_id);
  ret->req.set_worker_failed(true);  // the raylet kills the process
  rpc::SetTimeout(&ret->ctx, 5000);
  a.lease_id.clear();
  if (!calls_.Start(&ret->ctx)) return delete ret;  // shutting down
  rpc::AsyncCall(*clients_->Stub<rpc::Raylet>(a.raylet),
                 &rpc::Raylet::Stub::PrepareAsyncReturnWorker, &ret->ctx,
                 ret->req, &ret->reply, [this, ret](grpc::Status) {
                   calls_.Finish(&ret->ctx);
                   delete ret;
                 });
}

void ActorManager::CreationEnded(Actor& a, const std::string& failure) {
  if (a.created) return;
  a.created = true;
  if (!on_creation_) return;
  // What the head saw of the creation task: its worker may never report
  // (an actor killed during or just after __init__ takes its unsent task
  // events with it), and the task's record would stay pending for ever.
  const rpc::TaskSpec& spec = a.spec.creation();
  rpc::TaskEvent e;
  e.set_task_id(spec.task_id());
  e.set_attempt(spec.attempt());
  e.set_job_id(spec.job_id());
  e.set_actor_id(a.info.actor_id());
  e.set_type(rpc::TaskEvent::ACTOR_CREATION_TASK);
  int64_t now = absl::ToUnixMicros(absl::Now());
  if (failure.empty()) {
    e.set_finished_us(now);
    e.set_node_id(a.info.node_id());
    e.set_worker_id(a.worker_id);
    e.set_pid(a.info.pid());
  } else {
    e.set_failed_us(now);
    e.set_error_kind(rpc::ErrorInfo::ACTOR_DIED);
    e.set_error_message(failure);
  }
  on_creation_(e);
}

void ActorManager::MarkDead(Actor& a, const std::string& cause) {
  CreationEnded(a, cause);  // unless it was created
  a.info.set_state(rpc::ActorInfo::DEAD);
  a.info.set_death_cause(cause);
  a.info.set_end_time_ms(absl::ToUnixMillis(absl::Now()));
  a.info.clear_address();
  if (!a.info.name().empty()) {
    auto key = NameKey(a.info.ns(), a.info.name());
    auto it = names_.find(key);
    if (it != names_.end() && it->second.Binary() == a.info.actor_id()) {
      names_.erase(it);  // the name may be used again
    }
  }
  spdlog::info("actor {} dead: {}", HexEncode(a.info.actor_id()), cause);
  Answer(a);
  // Kept for the state API until newer dead push it out; off this call
  // chain, whose callers may still hold `a`.
  auto id = ActorId::FromBinary(a.info.actor_id());
  if (id.ok()) loop_->Post([this, id = *id] { dead_.Ended(id); });
}

void ActorManager::Answer(Actor& a) {
  // Every state change ends here: published for subscribers, and, once
  // ALIVE or DEAD, answered to the callers waiting in GetActor.
  std::string detail = rpc::ActorInfo::State_Name(a.info.state());
  if (a.info.state() == rpc::ActorInfo::DEAD) {
    detail += ": " + a.info.death_cause();
  }
  publisher_->Publish(rpc::Event::ACTOR_STATE, a.info.actor_id(), detail);
  Save(a);
  if (a.info.state() != rpc::ActorInfo::ALIVE) {
    for (auto& done : a.kills) done(absl::OkStatus());
    a.kills.clear();
  }
  if (a.info.state() == rpc::ActorInfo::RESTARTING) return;
  for (auto& [reply, done] : a.waiters) {
    *reply->mutable_actor() = a.info;
    done(absl::OkStatus());
  }
  a.waiters.clear();
}

void ActorManager::HandleGetActor(const rpc::GetActorRequest& req,
                                  rpc::GetActorReply* reply, Done done) {
  Actor* a = nullptr;
  if (!req.actor_id().empty()) {
    auto id = ParseId<ActorId>(req.actor_id(), "actor_id");
    if (!id.ok()) return done(id.status());
    auto it = actors_.find(*id);
    if (it != actors_.end()) a = it->second.get();
  } else {
    auto it = names_.find(NameKey(req.ns(), req.name()));
    if (it != names_.end()) a = actors_[it->second].get();
  }
  if (a == nullptr) {
    return done(absl::NotFoundError(
        req.actor_id().empty() ? absl::StrCat("no actor named '", req.name(),
                                              "' in namespace '", req.ns(), "'")
                               : "no such actor"));
  }
  auto state = a->info.state();
  if (req.wait_ready() && (state == rpc::ActorInfo::PENDING ||
                           state == rpc::ActorInfo::RESTARTING)) {
    a->waiters.emplace_back(reply, std::move(done));
    return;
  }
  *reply->mutable_actor() = a->info;
  done(absl::OkStatus());
}

void ActorManager::HandleKillActor(const rpc::KillActorRequest& req,
                                   rpc::KillActorReply* reply, Done done) {
  auto id = ParseId<ActorId>(req.actor_id(), "actor_id");
  if (!id.ok()) return done(id.status());
  auto it = actors_.find(*id);
  if (it == actors_.end()) return done(absl::NotFoundError("no such actor"));
  Actor& a = *it->second;
  if (a.info.state() == rpc::ActorInfo::DEAD) return done(absl::OkStatus());
  if (req.no_restart()) {
    a.stopping = true;
    if (!req.reason().empty()) a.stop_reason = req.reason();
  }
  if (a.info.state() == rpc::ActorInfo::ALIVE) {
    Stop(a);  // the watch sees the process go, then Died decides
    a.kills.push_back(std::move(done));
    return;
  } else if (a.stopping) {
    ++a.attempt;  // what is in flight for it is discarded
    Stop(a);
    MarkDead(a, a.stop_reason);
  }
  done(absl::OkStatus());
}

void ActorManager::HandleListActors(const rpc::ListActorsRequest& req,
                                    rpc::ListActorsReply* reply, Done done) {
  for (const auto& [id, a] : actors_) *reply->add_actors() = a->info;
  reply->set_erased_dead(dead_.erased());
  reply->set_max_dead(static_cast<int64_t>(dead_.limit()));
  done(absl::OkStatus());
}

std::map<std::pair<std::string, std::string>, int64_t>
ActorManager::CountByState() const {
  std::map<std::pair<std::string, std::string>, int64_t> out;
  for (const auto& [id, a] : actors_) {
    std::string_view name = a->info.class_name();
    if (size_t dot = name.rfind('.'); dot != std::string_view::npos) {
      name.remove_prefix(dot + 1);
    }
    out[{rpc::ActorInfo::State_Name(a->info.state()), std::string(name)}]++;
  }
  return out;
}

void ActorManager::KillActorsInGroup(const std::string& pg_hex,
                                     std::function<void()> done) {
  std::vector<std::string> ids;
  for (const auto& [id, a] : actors_) {
    if (a->info.state() == rpc::ActorInfo::DEAD) continue;
    for (const auto& [name, qty] :
         a->spec.creation().resources().quantities()) {
      if (name.find(pg_hex) != std::string::npos) {
        ids.push_back(id.Binary());
        break;
      }
    }
  }
  if (ids.empty()) return done();
  auto left = std::make_shared<size_t>(ids.size());
  auto shared = std::make_shared<std::function<void()>>(std::move(done));
  for (const auto& id : ids) {
    rpc::KillActorRequest req;
    req.set_actor_id(id);
    req.set_no_restart(true);
    rpc::KillActorReply reply;
    HandleKillActor(req, &reply, [left, shared](absl::Status) {
      if (--*left == 0) (*shared)();
    });
  }
}

void ActorManager::OnNodeDead(const std::string& node_id) {
  std::vector<std::pair<ActorId, int64_t>> lost;
  for (const auto& [id, a] : actors_) {
    if (a->info.node_id() == node_id &&
        a->info.state() != rpc::ActorInfo::DEAD) {
      lost.emplace_back(id, a->attempt);
    }
  }
  for (const auto& [id, attempt] : lost) {
    Died(id, attempt, "its node died (declared dead by the head)");
  }
}

std::string ActorManager::JobOf(const ActorId& id) const {
  auto it = actors_.find(id);
  return it == actors_.end() ? "" : it->second->info.job_id();
}

rpc::Resources ActorManager::ResourcesOf(const ActorId& id) const {
  auto it = actors_.find(id);
  return it == actors_.end() ? rpc::Resources()
                             : it->second->spec.creation().resources();
}

void ActorManager::OnJobFinished(const std::string& job_id) {
  for (auto& [id, a] : actors_) {
    if (a->info.job_id() != job_id || a->info.detached() ||
        a->info.state() == rpc::ActorInfo::DEAD) {
      continue;
    }
    rpc::KillActorRequest req;
    req.set_actor_id(id.Binary());
    req.set_no_restart(true);
    rpc::KillActorReply reply;
    HandleKillActor(req, &reply, [](absl::Status) {});
  }
}

}  // namespace loom::gcs
