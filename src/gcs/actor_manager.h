// src/gcs/actor_manager.h
//
// ActorManager: the head's actor directory and global placement. An actor
// registers (PENDING); the manager picks a node whose free resources fit its
// placement demand (1 CPU unless it names its own resources), leases a
// worker there for the actor's lifetime resources (none unless named: a
// 2-CPU node hosts many actors), pushes the creation task to that worker
// and, once it ran, marks the actor ALIVE with its address. The node's
// raylet sees the process end and reports it (ReportWorkerDeath, or, after
// the head was away, by what it no longer holds when it registers again):
// the actor is restarted (RESTARTING, placed again) while restarts remain,
// else DEAD with the cause. The head holds no call or connection per actor.
// Readers wait for ALIVE or DEAD with GetActor(wait_ready).
//
//   ActorManager actors(&loop, &nodes);
//   actors.HandleRegisterActor(req, &reply, done);   // on the loop
#ifndef LOOM_GCS_ACTOR_MANAGER_H_
#define LOOM_GCS_ACTOR_MANAGER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "proto/gcs.pb.h"
#include "src/common/calls_in_flight.h"
#include "src/common/client_pool.h"
#include "src/common/event_loop.h"
#include "src/common/ids.h"
#include "src/gcs/global_scheduler.h"
#include "src/gcs/history.h"
#include "src/gcs/node_table.h"
#include "src/gcs/pubsub.h"
#include "src/gcs/storage.h"

namespace loom::gcs {

// Not thread-safe: runs on the GCS loop.
class ActorManager {
 public:
  // Calls out to raylets and actors' workers through `clients`; saves
  // every actor to `store` at each change of state.
  // Keeps the last `max_dead` dead actors (and their stored records).
  ActorManager(EventLoop* loop, NodeTable* nodes, Publisher* publisher,
               GlobalScheduler* scheduler, ClientPool* clients,
               StoreClient* store, size_t max_dead = 10000);
  ~ActorManager();

  // The load phase of a restarted head (rows of ActorRecord): ALIVE actors
  // stay so (their processes kept running and their callers call them
  // directly) until their nodes say otherwise, PENDING and RESTARTING ones
  // are placed again, DEAD ones are listed; names are taken again.
  absl::Status Load(const StoreClient::Table& rows);
  // The head's descriptors an actor holds, at most (see
  // CheckDescriptorHeadroom): past the limit, registration is refused.
  static constexpr int kDescriptorsPerActor = 2;
  void HandleRegisterActor(const rpc::RegisterActorRequest& req,
                           rpc::RegisterActorReply* reply, Done done);
  void HandleGetActor(const rpc::GetActorRequest& req,
                      rpc::GetActorReply* reply, Done done);
  void HandleKillActor(const rpc::KillActorRequest& req,
                       rpc::KillActorReply* reply, Done done);
  void HandleListActors(const rpc::ListActorsRequest& req,
                        rpc::ListActorsReply* reply, Done done);
  // A placement group was removed: actors placed in its bundles stop for
  // good (`pg_hex` appears in their resource names).
  // `done` runs once they are all gone.
  void KillActorsInGroup(const std::string& pg_hex, std::function<void()> done);
  // The job's driver is gone: its actors that are not detached stop.
  void OnJobFinished(const std::string& job_id);
  // A node was declared dead: its actors died with it (restarted elsewhere
  // while restarts remain), whether or not their connections broke.
  void OnNodeDead(const std::string& node_id);
  // A worker's process ended (its raylet saw it, or killed it: `cause`
  // says why then): the actor it was leased for, if any, died.
  void OnWorkerDead(const std::string& worker_id,
                    const std::string& cause = "");
  // A node registered (again) holding `held_leases` for heads: its ALIVE
  // actors whose leases are not among them died while it could not say so.
  void OnNodeRegistered(const std::string& node_id,
                        const absl::flat_hash_set<std::string>& held_leases);
  // Sends nothing more and cancels the calls in flight; when it returns, no
  // reply will touch this manager (replies already posted to the loop
  // still run there). Before the loop stops; from any other thread.
  void Shutdown() { calls_.Shutdown(); }
  // This head's incarnation, sent with its lease requests (see
  // RegisterNodeRequest.held).
  void set_head_epoch(std::string epoch) { head_epoch_ = std::move(epoch); }
  // How many actors are in each (state, class) (the class without its
  // module), for loom_actors.
  std::map<std::pair<std::string, std::string>, int64_t> CountByState() const;
  // The binary id of the actor's job; "" for an actor it does not know.
  std::string JobOf(const ActorId& id) const;
  // The resources the actor asks for (held while it is alive); empty for
  // an actor it does not know.
  rpc::Resources ResourcesOf(const ActorId& id) const;
  // Whether an actor holds that lease at that raylet (HOST:PORT).
  bool HoldsLease(const std::string& raylet, const std::string& lease_id) const;
  // The actors of a job (binary id) not dead.
  int64_t CountAlive(const std::string& job_id) const;
  // Asked before a new actor is registered, with its job's binary id: an
  // error refuses it (a job's actor quota).
  void set_admit(std::function<absl::Status(const std::string&)> admit) {
    admit_ = std::move(admit);
  }
  // Gets an event of each actor's creation task as the head saw it end
  // (FINISHED once ALIVE, FAILED if it died before), for the task records.
  void set_on_creation(std::function<void(const rpc::TaskEvent&)> f) {
    on_creation_ = std::move(f);
  }

 private:
  struct Actor;
  void Schedule(const ActorId& id);
  void Lease(const ActorId& id, int64_t attempt, const rpc::NodeInfo& node);
  void Create(const ActorId& id, int64_t attempt, const rpc::Address& worker,
              const std::string& raylet);
  // The actor's worker is `worker_id` ("": none): by_worker_ follows.
  void Bind(const ActorId& id, Actor& actor, const std::string& worker_id);
  void Died(const ActorId& id, int64_t attempt, const std::string& cause);
  void Stop(Actor& actor);
  void MarkDead(Actor& actor, const std::string& cause);
  // Its creation task ended: `failure` empty once ALIVE, else why it died
  // first (on_creation_, once per actor).
  void CreationEnded(Actor& actor, const std::string& failure);
  void Answer(Actor& actor);  // wakes GetActor(wait_ready) callers
  void RetryLater(const ActorId& id, int64_t attempt);
  // Writes the actor's record; `then` runs once it is saved.
  void Save(const Actor& actor, std::function<void()> then = nullptr);

  EventLoop* loop_;
  NodeTable* nodes_;
  Publisher* publisher_;
  ClientPool* clients_;
  std::string head_epoch_;
  CallsInFlight calls_;
  absl::flat_hash_map<ActorId, std::unique_ptr<Actor>> actors_;
  absl::flat_hash_map<std::string, ActorId> names_;      // ns + '\0' + name
  absl::flat_hash_map<std::string, ActorId> by_worker_;  // binary worker id
  // Nodes whose raylet did not answer a lease request, until when they are
  // passed over (the node table declares them dead in time).
  absl::flat_hash_map<std::string, absl::Time> unreachable_;
  GlobalScheduler* scheduler_;
  StoreClient* store_;
  std::function<absl::Status(const std::string&)> admit_;
  std::function<void(const rpc::TaskEvent&)> on_creation_;
  // The dead, oldest first; past its limit they go (Erase).
  BoundedHistory<ActorId> dead_;
  void Erase(const ActorId& id);
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_ACTOR_MANAGER_H_
