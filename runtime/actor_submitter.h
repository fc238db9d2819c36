// runtime/actor_submitter.h
//
// ActorSubmitter: a caller's side of actor calls. It learns an actor's
// address from the head (GetActor, waiting while it is pending or
// restarting) and pushes calls straight to it, several in flight. Each call
// carries a sequence number in submission order, counted from 0 for each
// incarnation of the actor, which runs them in that order. When the actor's
// process dies, calls not yet answered are sent again to the restarted actor
// while their retries last (max_task_retries), else fail with ACTOR_DIED;
// a dead actor fails everything with its cause.
//
//   ActorSubmitter actors(options);
//   objects.AddPending(return_id);
//   actors.Submit(actor_id, std::move(spec));
#ifndef LOOM_RUNTIME_ACTOR_SUBMITTER_H_
#define LOOM_RUNTIME_ACTOR_SUBMITTER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "proto/gcs.grpc.pb.h"
#include "proto/worker.grpc.pb.h"
#include "runtime/lineage.h"
#include "runtime/object_table.h"
#include "runtime/task_events.h"
#include "src/common/calls_in_flight.h"
#include "src/common/client_pool.h"
#include "src/common/event_loop.h"
#include "src/common/ids.h"

namespace loom {

class ActorSubmitter {
 public:
  struct Options {
    EventLoop* loop = nullptr;
    ObjectTable* objects = nullptr;
    std::string gcs_address;
    std::string self_address;
    ClientPool* clients = nullptr;  // the actors' workers; required
    Lineage* lineage = nullptr;     // told which results cannot be rebuilt
    TaskEvents* events = nullptr;   // null: none recorded
  };
  explicit ActorSubmitter(Options options);
  ~ActorSubmitter();

  // Thread-safe. The return object is pending in the table; references on
  // the arguments are held as for tasks.
  void Submit(const ActorId& actor, rpc::TaskSpec spec);
  // Thread-safe. Backpressure: false when the actor's max_pending_calls
  // (learned from the head, or set by its creator) are not yet answered;
  // else counts one more pending call.
  bool Admit(const ActorId& actor);
  void SetLimit(const ActorId& actor, int max_pending_calls);
  // Thread-safe. A call admitted is done (or was not submitted after all):
  // one pending call less.
  void Done(const ActorId& actor);
  // Thread-safe. This process killed the actor: later calls fail at once.
  void MarkDead(const ActorId& actor, const std::string& cause);
  // Thread-safe. Runs `fn` on the loop once this caller has no call to the
  // actor left unanswered (at once if none): the calls submitted before
  // this one finish, or fail, first.
  void WhenIdle(const ActorId& actor, std::function<void()> fn);
  // Thread-safe. Cancels an unanswered call of this caller's: one not yet
  // numbered fails here with TASK_CANCELLED; one sent (or numbered, once
  // sent) is interrupted at the actor, which answers TASK_CANCELLED (a
  // Python method gets KeyboardInterrupt, an async one's coroutine is
  // cancelled). False when no unanswered call has this task id;
  // INVALID_ARGUMENT for force=true on one (it would kill the actor).
  // keep_children: the calls' own tasks are not cancelled with it.
  absl::StatusOr<bool> Cancel(const TaskId& task, bool force,
                              bool keep_children = false);
  // Thread-safe. Cancels calls in flight and waits for them.
  void Shutdown();
  // On the loop. The head declared `node_id` dead: calls in flight to
  // actors there fail over now (resent to the restarted actor while retries
  // last), without waiting for their connections to break.
  void OnNodeDead(const std::string& node_id);

 private:
  struct Call;
  struct Pending {
    rpc::TaskSpec spec;
    bool ready = false;  // arguments resolved
    bool sent = false;   // to the current incarnation
    int64_t seq = -1;    // in the current incarnation; -1: none yet
    int retries_left = 0;
    bool cancelled = false;      // loom.cancel: interrupt it once sent
    bool keep_children = false;  // and not the tasks it submitted
  };
  struct State {
    std::string address;  // empty: unknown (resolving, or dead)
    std::string node_id;  // the node the actor runs on
    absl::flat_hash_set<grpc::ClientContext*> pushes;  // to `address`
    std::string failed;  // the address a call just failed on
    int32_t restarts = -1;
    bool resolving = false;
    int head_tries = 0;  // resolves that failed for want of the head
    absl::Time head_lost = absl::InfiniteFuture();  // since when
    bool dead = false;
    int max_task_retries = 0;
    rpc::ErrorInfo death;
    uint64_t next_index = 0;
    int64_t next_seq = 0;               // in the current incarnation
    uint64_t scan_from = 0;             // calls before it are numbered and sent
    std::map<uint64_t, Pending> calls;  // by submission order, not done
    // Calls the actor died running, with no retries left: failed once the
    // head says why it died (its death cause), or after a second.
    struct Lost {
      rpc::TaskSpec spec;
      std::string why;  // how the call broke
      absl::Time until;
    };
    std::vector<Lost> lost;
    std::vector<std::function<void()>> when_idle;  // WhenIdle's, waiting
    std::shared_ptr<rpc::CoreWorker::Stub> stub;
  };
  void Pump(const ActorId& id);
  void Resolve(const ActorId& id);
  void OnReply(const ActorId& id, uint64_t index, const std::string& address,
               Call* call, const grpc::Status& s);
  void FailAll(State& state, const rpc::ErrorInfo& error);
  // Runs (posts) the WhenIdle callbacks once state has no call left.
  void CheckIdle(State& state);
  // The actor at state's address is gone: calls sent there are resent to
  // the next incarnation (while retries last), found through the head.
  void Failover(const ActorId& id, const std::string& why);
  // Fails the lost calls (with `all` false, only those whose wait is over),
  // saying `death_cause` when the head gave one, else how each broke.
  void FailLost(State& state, const std::string& death_cause, bool all);
  // Asks the actor at state's address to interrupt task_id; asks again
  // while the actor does not know it yet (the cancel overtook the push)
  // and the call is still pending.
  void SendCancel(const ActorId& id, State& state, const std::string& task_id,
                  bool keep_children, int tries = 0);
  // One call fails: its return object gets `error`, its references go,
  // and it no longer counts as pending (the caller erases it).
  void FailCall(const rpc::TaskSpec& spec, rpc::ErrorInfo error);

  Options options_;
  std::unique_ptr<rpc::Gcs::Stub> gcs_;
  absl::flat_hash_map<ActorId, State> actors_;  // loop-owned
  absl::Mutex pending_mu_;
  struct Pending_ {
    int64_t count = 0;
    int limit = 0;
  };
  absl::flat_hash_map<ActorId, Pending_> pending_ ABSL_GUARDED_BY(pending_mu_);

  CallsInFlight calls_;
};

}  // namespace loom

#endif  // LOOM_RUNTIME_ACTOR_SUBMITTER_H_
