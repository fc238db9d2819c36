// runtime/task_submitter.h
//
// TaskSubmitter: the fast path from DESIGN.md. Tasks with the same resource
// shape share leases: the submitter leases a worker from its raylet once
// (following spillbacks to other raylets), pushes tasks straight to it over
// gRPC with several in flight, keeps an idle lease for `lease_idle_timeout`,
// and returns it after. ObjectRef arguments are resolved to values first. A
// worker that dies takes its in-flight tasks with it: each is retried on
// another lease up to max_retries, then fails with WORKER_CRASHED. A SPREAD
// key asks for several leases at once (each raylet places them on the
// nodes in turn) and deals its tasks to their nodes in turn
// (SpreadDealer), so that short tasks do not all run on the first lease.
//
//   TaskSubmitter submitter(options);
//   objects.AddPending(ObjectId::ForReturn(spec.task_id(), 1));
//   submitter.Submit(std::move(spec), demand.ToString());
//   ...
//   submitter.Shutdown();  // returns leases, waits for calls in flight
#ifndef LOOM_RUNTIME_TASK_SUBMITTER_H_
#define LOOM_RUNTIME_TASK_SUBMITTER_H_

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "proto/raylet.grpc.pb.h"
#include "proto/worker.grpc.pb.h"
#include "runtime/lineage.h"
#include "runtime/object_table.h"
#include "runtime/task_events.h"
#include "src/common/calls_in_flight.h"
#include "src/common/client_pool.h"
#include "src/common/event_loop.h"
#include "src/common/ids.h"

namespace loom {

struct TaskCounters {
  std::atomic<int64_t> submitted{0}, finished{0}, failed{0}, retried{0};
  // Called after each count: wakes reports that sleep while nothing
  // happens (CoreWorker). Set before the counters are shared.
  std::function<void()> on_count;
  void Count(std::atomic<int64_t>& counter) {
    counter.fetch_add(1, std::memory_order_relaxed);
    if (on_count) on_count();
  }
};

class TaskSubmitter {
 public:
  struct Options {
    EventLoop* loop = nullptr;
    ObjectTable* objects = nullptr;
    TaskCounters* counters = nullptr;
    std::string local_raylet;  // host:port
    JobId job;
    WorkerId worker_id;
    std::vector<std::string> code_search_path;
    std::string self_address;       // this core worker's, host:port
    ClientPool* clients = nullptr;  // raylets and leased workers; required
    // Keeps the spec of each task whose return lands in a store (null: none).
    Lineage* lineage = nullptr;
    // A worker could not read argument `id` (its node died): rebuild it if
    // this process can; the task then runs again once it is ready.
    std::function<void(const ObjectId& id, const NodeId& node)>
        on_argument_lost;
    absl::Duration lease_idle_timeout = absl::Seconds(1);
    int max_inflight_per_worker = 64;
    // SPREAD keys: lease requests in flight at once (each placed on the
    // next node), and how tasks are dealt to nodes (spread_dealer.h).
    int spread_lease_requests = 32;
    int spread_slack = 8;
    absl::Duration spread_hold = absl::Seconds(3);
    TaskEvents* events = nullptr;  // null: none recorded
  };
  explicit TaskSubmitter(Options options);
  ~TaskSubmitter();

  // Thread-safe. The task's return object must be pending in the table, and
  // the caller holds one reference on each ObjectRef argument, which the
  // submitter releases once the argument is inlined.
  // `key` names the task's resource shape and function; tasks with one key
  // share leases. max_calls > 0: a lease's worker runs at most that many of
  // the key's tasks; then (or when the lease goes idle first) it is
  // returned with its worker stopped, and a fresh worker takes over.
  // `runtime`: the workers the key's tasks need, when not the job's.
  void Submit(rpc::TaskSpec spec, std::string key, int max_calls = 0,
              std::optional<rpc::WorkerRuntime> runtime = std::nullopt);
  // Thread-safe. Runs a task again to rebuild its lost returns (pending in
  // the table again); the caller holds a reference on each ref argument, as
  // for Submit. `spec`'s ref arguments name no store node.
  void Resubmit(rpc::TaskSpec spec, std::string key);
  // On the loop. The head declared `node_id` dead: tasks in flight on
  // workers there are retried now (as their max_retries allow), without
  // waiting for their connections to break.
  void OnNodeDead(const std::string& node_id);
  // The kind of worker to lease (C++ unless set); before the first Submit.
  void set_runtime(rpc::WorkerRuntime runtime) {
    runtime_ = std::move(runtime);
  }
  // Thread-safe. A task still queued fails with TASK_CANCELLED; one
  // pushed to a worker is cancelled there (force: the worker exits), and
  // fails the same way rather than being retried.
  void Cancel(const TaskId& task, bool force, bool keep_children = false);
  // Thread-safe. Returns every lease and waits for calls in flight.
  void Shutdown();
  // Thread-safe: blocks while `max` or more tasks submitted here have not
  // finished or failed (max <= 0: returns at once); false if it waited.
  bool WaitForRoom(int64_t max);

 private:
  struct Lease;
  struct KeyState;
  struct Call;

  void Resolve(rpc::TaskSpec spec, std::string key);
  void Opened();
  void Closed();  // a task finished or failed for good
  void Enqueue(rpc::TaskSpec spec, const std::string& key);
  void Pump(KeyState& ks);
  void RequestLease(KeyState& ks, const std::string& raylet, bool no_spillback);
  // The node whose store holds most of the task's arguments ("": none).
  static std::string DataNode(const rpc::TaskSpec& spec);
  void OnLeaseReply(const std::string& key, Call* call, const grpc::Status& s);
  void Push(KeyState& ks, const std::shared_ptr<Lease>& lease,
            rpc::TaskSpec spec);
  void OnPushReply(const std::string& key, const std::shared_ptr<Lease>& lease,
                   Call* call, const grpc::Status& s);
  void ResolveReturn(Call* call, const std::string& key);
  void DropLease(KeyState& ks, const std::shared_ptr<Lease>& lease,
                 bool failed);
  // A lease dropped as failed: runs `then` once its raylet has said why the
  // worker died (or could not say), at once if it has.
  // The worker could not read an argument that is lost, and the task has
  // retries left: it runs again (OnPushReply) instead of failing.
  bool RunsAgainForLostArgument(const Call& call) const;
  void WhenDeathKnown(const std::shared_ptr<Lease>& lease,
                      std::function<void()> then);
  // `death`: the raylet's cause (it killed the worker), or null.
  void DeathLearned(const std::shared_ptr<Lease>& lease,
                    const rpc::ErrorInfo* death);
  // The error of a task whose worker died with its retries used up: the
  // raylet's cause (OUT_OF_MEMORY) when it gave one, else WORKER_CRASHED.
  static rpc::ErrorInfo DeathError(const rpc::TaskSpec& spec,
                                   const std::shared_ptr<Lease>& lease,
                                   const std::string& why);
  void FailQueued(KeyState& ks, const rpc::ErrorInfo& error);
  void Fail(const rpc::TaskSpec& spec, rpc::ErrorInfo error);
  // Drops the references held on arguments that live in a store.
  void ReleaseStoreArgs(const rpc::TaskSpec& spec);
  void ReturnIdleLeases();
  // Sets the idle-lease timer unless it is set.
  void ArmIdleCheck(absl::Duration after);
  std::shared_ptr<rpc::Raylet::Stub> RayletStub(const std::string& address);

  Options options_;
  // Loop-owned state.
  absl::flat_hash_map<std::string, std::unique_ptr<KeyState>> keys_;
  bool shutting_down_ = false;
  bool idle_check_armed_ = false;  // a ReturnIdleLeases is posted
  rpc::WorkerRuntime runtime_;
  // Tasks pushed and not answered, by task id, and those cancelled.
  absl::flat_hash_map<std::string, std::shared_ptr<Lease>> pushed_;
  absl::flat_hash_set<std::string> cancelled_;
  // Keys submitted with max_calls > 0, and their limit.
  absl::flat_hash_map<std::string, int> max_calls_;
  absl::flat_hash_map<std::string, rpc::WorkerRuntime> runtimes_;
  std::atomic<bool> shutdown_called_{false};

  // gRPC calls in flight, so that Shutdown can cancel and wait for them.
  CallsInFlight calls_;
  absl::Mutex open_mu_;
  int64_t open_ ABSL_GUARDED_BY(open_mu_) = 0;
};

}  // namespace loom

#endif  // LOOM_RUNTIME_TASK_SUBMITTER_H_
