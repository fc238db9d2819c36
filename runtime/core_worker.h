// runtime/core_worker.h
//
// CoreWorker: the library inside every driver and worker. It submits tasks
// (through TaskSubmitter), owns what it creates (ObjectTable), and in a
// worker executes the tasks pushed to it, one at a time in arrival order. A
// worker blocked in Get/Wait lends its CPU back to the raylet until it
// resumes, so nested tasks cannot deadlock.
//
//   auto cw = CoreWorker::Create({.is_driver = true, .raylet_address = ...});
//   ObjectId id = *(*cw)->SubmitTask("Add", args, options);
//   auto results = (*cw)->Get({id}, -1);
#ifndef LOOM_RUNTIME_CORE_WORKER_H_
#define LOOM_RUNTIME_CORE_WORKER_H_

#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "loom/api.h"
#include "loom/internal/runtime.h"
#include "object_store/layout.h"
#include "object_store/store_client.h"
#include "proto/worker.pb.h"
#include "runtime/object_table.h"
#include "runtime/streams.h"
#include "runtime/task_events.h"
#include "src/common/client_pool.h"
#include "src/common/event_loop.h"
#include "src/common/ids.h"

namespace loom {

class CoreWorkerService;
class TaskSubmitter;
class Lineage;
class ObjectStoreClient;
struct ObjectView;
struct TaskCounters;
class RayletClient;
class OwnerClient;
class ActorSubmitter;
class HeadEvents;
class DriverLogs;

// Values above this size need the object store.
inline constexpr size_t kInlineThreshold = 100 * 1024;
// How long a put waits for a full store to make room before it fails.
inline constexpr absl::Duration kStoreFullWait = absl::Seconds(2);

// Thread-safe.
class CoreWorker {
 public:
  // A task argument for a language runtime: a whole object, inline bytes or
  // a view pinned in this node's store while `holder` lives.
  struct TaskArgView {
    std::string_view bytes;
    std::shared_ptr<const void> holder;
  };
  struct Options {
    bool is_driver = true;
    std::string host = "127.0.0.1";
    std::string raylet_address;  // this node's raylet, host:port
    std::string gcs_address;     // drivers register their job there
    WorkerId worker_id = WorkerId::FromRandom();
    std::vector<std::string> code_search_path;
    // This node's object store (<session>/sockets/store); empty: none, and
    // values above the inline threshold are refused.
    std::string store_socket;
    // The workers this process's tasks and actors need (C++ by default).
    rpc::WorkerRuntime runtime;
    // A C++ process's calls of Python functions and actors run on these
    // (an interpreter that imports loom); unset: such calls fail.
    rpc::WorkerRuntime python_workers;
    // A worker of a language runtime (Python) runs every task with this
    // instead of the C++ function table. It must call `finish` once, when
    // the reply is filled, from any thread. cancel_handler interrupts a
    // running task (CancelTask without force).
    std::function<void(const rpc::TaskSpec&, std::vector<TaskArgView>,
                       rpc::PushTaskReply*, std::function<void()>)>
        task_handler;
    std::function<void(const TaskId&, bool keep_children)> cancel_handler;
    // A driver: subscribe to what the job's workers print, on every node
    // (see driver_logs.h; the caller prints what driver_logs() hands it).
    bool log_to_driver = false;
    // A worker: called once, when it first joins a job, before any of the
    // job's tasks runs (loom-worker points its stdout and stderr at files
    // its raylet follows; see src/raylet/log_monitor.h).
    std::function<void(const JobId&)> on_job;
    // Bytes of task specs kept to rebuild lost objects (lineage.h); -1:
    // $LOOM_MAX_LINEAGE_BYTES, else kDefaultMaxLineageBytes. 0 keeps none.
    int64_t max_lineage_bytes = -1;
  };
  static absl::StatusOr<std::unique_ptr<CoreWorker>> Create(Options options);
  ~CoreWorker();
  // Returns leases, marks the job finished (driver), stops serving.
  void Shutdown();

  // `contained`: refs serialized inside the arguments (held until the task
  // is done) or the value (held while it lives).
  // The task's return objects (options.num_returns of them).
  absl::StatusOr<std::vector<ObjectId>> SubmitTask(
      const std::string& function_name, std::vector<internal::Arg> args,
      const internal::TaskOptions& options,
      const std::vector<ObjectId>& contained);
  // Blocks while this driver's job has its quota of pending tasks
  // (max_pending_tasks) submitted here and not yet finished; at once
  // otherwise. Callers of SubmitTask call it first, without locks held.
  void WaitForTaskRoom();
  bool limits_pending_tasks() const { return max_pending_tasks_ > 0; }
  absl::StatusOr<ObjectId> Put(std::string value,
                               const std::vector<ObjectId>& contained = {});

  // Actors: registered with the head, which creates them; calls go
  // straight to the actor.
  // An actor and the object whose references count its handles (none for
  // detached actors), owned here or at `owner`.
  struct ActorRef {
    ActorId actor;
    std::optional<ObjectId> handle;
    std::string owner;  // empty: this process
  };
  absl::StatusOr<ActorRef> CreateActor(const std::string& factory,
                                       const std::string& class_name,
                                       std::vector<internal::Arg> args,
                                       const internal::ActorOptions& options,
                                       const std::vector<ObjectId>& contained);
  // Aborted: the actor's max_pending_calls from this caller are in flight.
  absl::StatusOr<std::vector<ObjectId>> SubmitActorTask(
      const ActorId& actor, const std::string& method,
      std::vector<internal::Arg> args, const std::vector<ObjectId>& contained,
      int num_returns = 1, int64_t stream_window = 0,
      bool msgpack_values = false);
  absl::StatusOr<ActorRef> GetNamedActor(const std::string& name,
                                         const std::string& ns);
  // `reason`: its death cause (empty: "killed by loom::Kill").
  absl::Status KillActor(const ActorId& actor, bool no_restart,
                         const std::string& reason = "");
  // nullopt on timeout (timeout_ms < 0: none).
  std::optional<std::vector<ObjectResult>> Get(const std::vector<ObjectId>& ids,
                                               int64_t timeout_ms);
  std::vector<bool> Wait(const std::vector<ObjectId>& ids, int num_returns,
                         int64_t timeout_ms);

  // Raw objects (Buffer, Tensor): stored as bytes plus metadata, read in
  // place. GetRaw's error is set when the object failed; nullopt on timeout.
  absl::StatusOr<ObjectId> PutRaw(std::string_view data,
                                  std::string_view metadata);
  struct RawResult {
    std::optional<rpc::ErrorInfo> error;
    internal::RawObject object;
  };
  std::optional<RawResult> GetRaw(const ObjectId& id, int64_t timeout_ms);
  // The raw buffer or msgpack bytes of an object's bytes (an inline value
  // may be bare msgpack); an error for a Python (pickle) value.
  static absl::Status ViewRaw(const uint8_t* data, uint64_t size,
                              bool inline_value, internal::RawObject* out);
  // Objects in the common layout (Python values): inline when small, else
  // written straight into this node's store.
  absl::StatusOr<ObjectId> PutLayout(
      Format format, std::string_view metadata,
      const std::vector<std::string_view>& buffers,
      const std::vector<ObjectId>& contained);
  // A whole object's bytes, inline or pinned in this node's store while
  // `holder` lives; `error` set when it failed.
  struct LayoutResult {
    std::optional<rpc::ErrorInfo> error;
    std::string_view bytes;
    std::shared_ptr<const void> holder;
  };
  std::optional<std::vector<LayoutResult>> GetLayouts(
      const std::vector<ObjectId>& ids, int64_t timeout_ms);
  // Waits up to `timeout_ms` until every object is ready or one failed;
  // true when so. Waits in slices (a language's get that checks for
  // interrupts between them) resume where `progress` stopped, so that a
  // get of a million refs does not look at every one again each slice.
  bool WaitReady(const std::vector<ObjectId>& ids,
                 ObjectTable::Progress* progress, int64_t timeout_ms);
  // Executor: seals a return value in this node's store, owned by `owner`
  // (host:port; empty: this process, as for a put).
  absl::Status StoreLayout(const ObjectId& id, Format format,
                           std::string_view metadata,
                           const std::vector<std::string_view>& buffers,
                           const std::string& owner = "");
  bool has_store() const { return store_ != nullptr; }
  // Where this process maps the node's store: (address, bytes); (0, 0)
  // without one.
  std::pair<uintptr_t, uint64_t> StoreMapping() const;
  RayletClient* raylet_client() { return raylet_.get(); }
  const std::string& gcs_address() const { return options_.gcs_address; }
  const NodeId& node_id() const { return node_id_; }
  const WorkerId& worker_id() const { return options_.worker_id; }
  // An object that becomes `value` once the placement group is created (an
  // INFEASIBLE error while it cannot be, OWNER_DIED... once removed).
  ObjectId PlacementGroupReady(const std::string& pg_id, std::string value);
  // Cancels a task or actor call this process submitted (see
  // CancelTaskRequest). False when it is not pending here. force=true on an
  // actor call is INVALID_ARGUMENT (it would kill the actor): use KillActor.
  // keep_children: the tasks a running one submitted are not cancelled.
  absl::StatusOr<bool> CancelTask(const ObjectId& ret, bool force,
                                  bool keep_children = false);

  // Streaming generators (streams.h), caller side: `ret` is the task's
  // return. The next item's object (its reference passes to the caller,
  // who drops it once it took its own), nullopt once the stream has ended
  // (the return then holds the count, or the error that ended it);
  // DeadlineExceeded after timeout_ms (< 0: none).
  absl::StatusOr<std::optional<ObjectId>> StreamNext(const ObjectId& ret,
                                                     int64_t index,
                                                     int64_t timeout_ms);
  // The consumer is gone: unread items are freed, the executor stops.
  void CloseStream(const ObjectId& ret);
  // Executor side: sends an item to its owner; `done(status, stop)` runs
  // on a gRPC thread with the owner's answer.
  void SendStreamItem(const std::string& owner,
                      rpc::ReportStreamItemRequest req,
                      std::function<void(absl::Status, bool)> done);

  // Runs `fn` once `id` is ready here (a value, an error, or unknown to
  // this process), on the thread that makes it so, or at once if it is.
  // `fn` must be quick and must not block: it may run on the event loop.
  void OnReady(const ObjectId& id, std::function<void()> fn) {
    objects_.OnReady(id, std::move(fn));
  }
  void AddRef(const ObjectId& id) { objects_.AddRef(id); }
  void RemoveRef(const ObjectId& id) { objects_.RemoveRef(id); }

  // Borrowing. This core worker's address, host:port.
  const std::string& address() const { return address_; }
  // The address of the core worker that owns `id` (ours unless borrowed).
  std::string OwnerOf(const ObjectId& id) const;
  // A ref to `id` owned at `owner` arrived inside a value. True when this
  // process must now register as a borrower (RegisterBorrows).
  bool Borrow(const ObjectId& id, const std::string& owner);
  // Blocking, one call per owner. An unreachable owner makes the object an
  // OWNER_DIED error here.
  void RegisterBorrows(
      const std::vector<std::pair<ObjectId, std::string>>& borrows);
  // Executor: refs inside a return value. Registers the caller as a
  // borrower of each (one unit) and lists them in the reply.
  void LendToCaller(const std::vector<ObjectId>& ids,
                    const rpc::Address& caller, rpc::PushTaskReply* reply);

  const JobId& job() const { return job_; }
  // Which of this process's core workers this is (1 for the first; never
  // reused): a ref counted by one is never released on a later one.
  uint32_t incarnation() const { return incarnation_; }
  std::vector<int> gpu_ids() const;
  // The threads its lease's CPUs allow the math libraries (thread_caps.h);
  // 0: no cap (a driver, no lease yet, or the user set the variables).
  int thread_cap() const { return thread_cap_.load(); }
  int port() const { return port_; }
  bool is_driver() const { return options_.is_driver; }
  // What the job's workers print (drivers with log_to_driver; else null).
  DriverLogs* driver_logs() const { return driver_logs_.get(); }

  // Worker side: called from the gRPC edge.
  void HandlePushTask(const rpc::PushTaskRequest& req,
                      rpc::PushTaskReply* reply,
                      std::function<void(absl::Status)> done);
  // From this worker's raylet only (the control key it registered with).
  absl::Status HandleAssignJob(const rpc::AssignJobRequest& req);
  absl::Status HandleEndLease(const rpc::EndLeaseRequest& req);
  absl::Status HandleExit(const rpc::ExitRequest& req);
  absl::Status HandleCancelTask(const rpc::CancelTaskRequest& req,
                                rpc::CancelTaskReply* reply);
  // Owner side: a borrower asks for a value (`done` runs once it is ready)
  // or takes / returns borrow units.
  void HandleGetObject(const rpc::GetObjectRequest& req,
                       rpc::GetObjectReply* reply,
                       std::function<void(absl::Status)> done);
  // Owner side: an item of a streaming generator this process called.
  void HandleReportStreamItem(const rpc::ReportStreamItemRequest& req,
                              rpc::ReportStreamItemReply* reply,
                              std::function<void(absl::Status)> done);
  absl::Status HandleUpdateBorrows(const rpc::UpdateBorrowsRequest& req,
                                   rpc::UpdateBorrowsReply* reply);
  // Borrower side: `done` runs when this core worker shuts down.
  void HandleWatchBorrower(std::function<void()> done);
  absl::Status HandleGetReferences(const rpc::GetReferencesRequest& req,
                                   rpc::GetReferencesReply* reply);
  // Blocks until Exit is requested (workers' main thread).
  void WaitForExit();
  void RequestExit();

 private:
  struct Execution {
    const rpc::PushTaskRequest* req;
    rpc::PushTaskReply* reply;
    std::function<void(absl::Status)> done;
    // For task events (TaskEvents::Now(); 0: not reached), reported once
    // by Finish.
    int64_t run_start_us = 0, run_end_us = 0;
  };
  explicit CoreWorker(Options options);
  absl::Status Connect();
  // What a worker accepts (worker_checks.cc): a pushed task runs only under
  // the lease its raylet assigned, for that lease's job; an actor call only
  // on the actor this worker serves. PermissionDenied or FailedPrecondition
  // otherwise; records the actor a creation makes this worker serve.
  absl::Status AdmitPush(const rpc::PushTaskRequest& req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(exec_mu_);
  // PermissionDenied unless `key` is the one this worker registered with.
  absl::Status CheckControlKey(const std::string& key) const;
  void ExecuteLoop();
  void Execute(const rpc::TaskSpec& spec, rpc::PushTaskReply* reply);
  // The task handler's path: pins arguments, runs it, finishes later.
  void ExecuteWithHandler(std::shared_ptr<Execution> e);
  // After a task ran: the actor a creation task made, counters, the reply.
  void Finish(Execution& e);
  // Seals `data` as object `id` in this node's store (the primary copy),
  // owned by `owner` (empty: this process).
  absl::Status WriteToStore(const ObjectId& id, std::string_view data,
                            const std::string& owner = "");
  // The msgpack bytes of a C++ value in the store, in place.
  static absl::StatusOr<std::string_view> MsgpackInPlace(
      const ObjectId& id, const ObjectView& view);
  // A worker whose node's store stopped answering (Unavailable) has lost
  // its raylet: it exits, as its lifeline would make it, so that its
  // caller retries the task rather than failing it. Drivers go on.
  void ExitIfStoreGone(const absl::Status& s) const;
  absl::StatusOr<uint8_t*> CreateInStore(const ObjectId& id, uint64_t data_size,
                                         uint64_t metadata_size,
                                         const std::string& owner = "");
  // Replaces in-store results with their bytes, read from this node's store.
  // Waits for the owner's results, lending the CPU meanwhile (workers),
  // until all are ready or one holds an error (ObjectTable::Get's
  // stop_at_error: the first error is raised without waiting for the rest).
  // WhileBlocked for a wait(until) that says whether it is done, watching
  // `watch` (no CPU is lent once it is ready).
  bool BlockedWait(const ObjectId& watch, absl::Time deadline,
                   const std::function<bool(absl::Time)>& wait);
  // The job's runtime with a task's or actor's own environment, or the
  // other language's workers for a cross-language call.
  rpc::WorkerRuntime RuntimeFor(const internal::WorkerEnv& env) const;
  // Before a streaming task is submitted: its stream, ended by `ret`.
  void OpenStream(const TaskId& task, int64_t window, const ObjectId& ret);
  std::optional<std::vector<ObjectResult>> WaitResults(
      const std::vector<ObjectId>& ids, int64_t timeout_ms);
  ObjectId NextPutId();
  // Makes an object that lives in `node`'s store present in this node's
  // (the raylet pulls it).
  absl::Status MakeLocal(const ObjectId& id, const NodeId& node);
  // Before reading several objects: those on other nodes are pulled here
  // together, several at a time, not one by one as each is read (errors
  // come when each is read), then pinned with one store call. One on
  // another node, or none: nothing to do.
  // `pinned` (optional) gets the views.
  class Prefetched;
  void Prefetch(const std::vector<std::pair<ObjectId, NodeId>>& objects,
                Prefetched* pinned = nullptr);
  // Prefetch of the objects among `results` that live in a store, and of
  // a task's arguments passed by reference.
  void PrefetchResults(const std::vector<ObjectId>& ids,
                       const std::vector<ObjectResult>& results,
                       Prefetched* pinned);
  void PrefetchArgs(const rpc::TaskSpec& spec, Prefetched* pinned);
  // MakeLocal, then a view of it pinned in this node's store (Release it).
  // With `prefetched`, a view it pinned already is taken from it.
  absl::StatusOr<ObjectView> PinLocal(const ObjectId& id, const NodeId& node,
                                      int64_t timeout_ms,
                                      Prefetched* prefetched = nullptr);
  // Runs wait(until) for `ids`, lending this worker's CPU to the raylet
  // meanwhile unless done(result) within a moment.
  template <typename Fn, typename Done>
  auto WhileBlocked(const std::vector<ObjectId>& ids, absl::Time deadline,
                    Fn wait, Done done);
  // Reads in-store results into values. True when one was lost (every copy
  // gone): it was passed to Recover, and the caller waits for it again.
  bool FetchFromStore(std::vector<ObjectResult>& results,
                      const std::vector<ObjectId>& ids, int64_t timeout_ms);
  // GetLayouts' one pass; sets `lost` when an object was lost (see
  // Recover), and the caller waits again.
  std::optional<std::vector<LayoutResult>> TryGetLayouts(
      const std::vector<ObjectId>& ids, int64_t timeout_ms, bool* lost);
  // Lineage reconstruction (reconstruction.cc). `id`, last in `node`'s
  // store, has no copy left: makes it pending again and re-runs the task
  // that made it (first those of its lost arguments), or fails it with
  // OBJECT_LOST saying why it cannot be rebuilt.
  void Recover(const ObjectId& id, const NodeId& node);
  // Whether the head's directory knows a copy on a live node.
  bool HasLiveCopy(const ObjectId& id);
  TaskId NextTaskId();
  void ReportStatsPeriodically();
  // Whether it had anything to report (sent, or failed and kept).
  bool ReportStats();
  // Whether counts, held objects or metrics changed since the last report.
  bool ReportsPending() const;
  // The counts a report carries, in reported_'s order, and whether the
  // worker started or stopped owning objects since the last report.
  std::array<int64_t, 5> StatsNow() const;
  bool HoldsChanged(const std::array<int64_t, 5>& now) const;
  // Restarts reports that sleep; cheap when they do not. Any thread.
  void WakeReports();
  // Fills the spec's arguments: values inline, large ones put in the store
  // and passed as refs, ObjectRefs as refs (in `deps`).
  absl::Status BuildArgs(std::vector<internal::Arg> args, rpc::TaskSpec* spec,
                         std::vector<ObjectId>* deps);
  void StartTaskEvents();
  void StartSubmitters(const std::vector<std::string>& code_search_path);
  // Actor side: queues an actor call once the calls its caller sent before
  // it are queued (sequence numbers).
  void QueueInOrder(Execution e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(exec_mu_);
  // PlacementGroupReady's thread: resolves `id` once the group is placed.
  void WaitForPlacementGroup(const ObjectId& id, const std::string& pg_id,
                             const std::string& value);
  // Asks the owner of a borrowed object for its value.
  void FetchBorrowed(const ObjectId& id, const std::string& owner);
  // Owner side: one borrow unit per id for `borrower`; ids we no longer
  // hold are appended to `unknown`.
  void AddBorrowUnits(const std::string& borrower,
                      const std::vector<ObjectId>& ids,
                      std::vector<ObjectId>* unknown);
  void RemoveBorrowUnits(const std::string& borrower,
                         const std::vector<ObjectId>& ids);
  // Subscribes to the head's events (once; see head_events.h): node deaths
  // fail over what is in flight there, and the death for good of an actor
  // this process created releases its creation's refs.
  void FollowHeadEvents();
  // The refs an actor's creation held (its arguments in a store, the refs
  // inside its arguments): released once the actor is dead for good.
  void ReleaseCreationRefs(const ActorId& actor);
  // Drops every unit of a borrower that exited or died.
  void BorrowerGone(const std::string& borrower);

  Options options_;
  JobId job_;
  int64_t max_pending_tasks_ = 0;  // the job's quota (a driver's); 0: none
  TaskId driver_task_;
  std::atomic<uint32_t> driver_children_{0};
  std::atomic<uint32_t> driver_puts_{0};
  ObjectTable objects_;
  StreamTable streams_{&objects_};  // streaming generators called from here
  std::atomic<int64_t> streams_open_{0};  // ever: frees look them up
  EventLoop loop_;
  std::string address_;
  ClientPool clients_;  // outgoing calls: raylets, workers, owners
  std::unique_ptr<OwnerClient> owners_;  // uses loop_
  std::unique_ptr<TaskCounters> counters_;
  // What this process sees of tasks, for the head's state API; made once
  // the node is known.
  std::unique_ptr<TaskEvents> events_;
  std::unique_ptr<Lineage> lineage_;  // before the submitters that feed it
  std::unique_ptr<TaskSubmitter> submitter_;
  std::unique_ptr<ActorSubmitter> actor_submitter_;
  std::unique_ptr<HeadEvents> head_events_;  // node and actor deaths
  std::once_flag head_events_once_;
  std::unique_ptr<DriverLogs> driver_logs_;  // uses loop_
  std::unique_ptr<RayletClient> raylet_;
  std::shared_ptr<ObjectStoreClient> store_;
  NodeId node_id_;
  std::unique_ptr<CoreWorkerService> service_;
  int port_ = 0;
  std::atomic<bool> shut_down_{false};
  // Task counters and live objects last reported (loop).
  int64_t reported_[5] = {0, 0, 0, 0, 0};
  std::atomic<bool> reports_asleep_{false};

  // Handle objects of the actors this process created -> the actor.
  absl::Mutex handles_mu_;
  absl::flat_hash_map<ObjectId, ActorId> handles_ ABSL_GUARDED_BY(handles_mu_);
  // Actors this process created -> the refs their creation holds.
  absl::flat_hash_map<ActorId, std::vector<ObjectId>> creation_refs_
      ABSL_GUARDED_BY(handles_mu_);

  // Owner side: borrow units held by other core workers, per borrower.
  absl::Mutex borrowers_mu_;
  absl::flat_hash_map<std::string, absl::flat_hash_map<ObjectId, int64_t>>
      borrowers_ ABSL_GUARDED_BY(borrowers_mu_);
  // Borrower side: owners waiting for this process to exit.
  std::vector<std::function<void()>> watchers_ ABSL_GUARDED_BY(borrowers_mu_);
  bool watchers_done_ ABSL_GUARDED_BY(borrowers_mu_) = false;

  absl::Mutex exec_mu_;
  std::deque<Execution> exec_queue_ ABSL_GUARDED_BY(exec_mu_);
  bool exec_stop_ ABSL_GUARDED_BY(exec_mu_) = false;
  bool exit_requested_ ABSL_GUARDED_BY(exec_mu_) = false;
  std::vector<int> gpu_ids_ ABSL_GUARDED_BY(exec_mu_);
  std::atomic<int> thread_cap_{0};
  bool code_loaded_ ABSL_GUARDED_BY(exec_mu_) = false;
  // The key given to the raylet at registration; its control calls carry it.
  const std::string control_key_ = NewControlKey();
  const uint32_t incarnation_;
  // The lease pushes must carry (nil: none, e.g. returned), and the actor
  // this worker serves once a creation was admitted (nil: none).
  LeaseId lease_ ABSL_GUARDED_BY(exec_mu_);
  ActorId actor_id_ ABSL_GUARDED_BY(exec_mu_);
  // Tasks running now (their ids), for CancelTask, with the lease they were
  // pushed under (empty for actor calls).
  absl::flat_hash_map<std::string, std::string> running_
      ABSL_GUARDED_BY(exec_mu_);
  std::thread exec_thread_;
  // PlacementGroupReady's long polls (detached threads) still running.
  int pg_waiting_ ABSL_GUARDED_BY(exec_mu_) = 0;
  std::vector<std::thread> exec_pool_;  // an actor's extra threads
  // Actor side: the instance this worker serves, and per caller the next
  // sequence number to run and the calls that arrived early.
  std::shared_ptr<void> actor_ ABSL_GUARDED_BY(exec_mu_);
  std::string actor_class_ ABSL_GUARDED_BY(exec_mu_);
  struct CallerQueue {
    int64_t next = 0;
    std::map<int64_t, Execution> early;
  };
  absl::flat_hash_map<std::string, CallerQueue> callers_
      ABSL_GUARDED_BY(exec_mu_);
};

// Views CoreWorker::Prefetch pinned: each taken once (Take), the rest
// released with it.
class CoreWorker::Prefetched {
 public:
  explicit Prefetched(std::shared_ptr<ObjectStoreClient> store)
      : store_(std::move(store)) {}
  Prefetched(const Prefetched&) = delete;
  Prefetched& operator=(const Prefetched&) = delete;
  ~Prefetched() {
    for (const auto& [id, view] : views_) store_->Release(id).IgnoreError();
  }
  void Add(const ObjectId& id, const ObjectView& view) {
    if (!views_.emplace(id, view).second) store_->Release(id).IgnoreError();
  }
  std::optional<ObjectView> Take(const ObjectId& id) {
    auto it = views_.find(id);
    if (it == views_.end()) return std::nullopt;
    ObjectView view = it->second;
    views_.erase(it);
    return view;
  }

 private:
  std::shared_ptr<ObjectStoreClient> store_;
  absl::flat_hash_map<ObjectId, ObjectView> views_;
};

// The time `timeout_ms` from now (< 0: none), and back: milliseconds left
// until `deadline` (-1: none; 0 once past).
absl::Time Deadline(int64_t timeout_ms);
int64_t RemainingMs(absl::Time deadline);

// The process's core worker for the API (null before Init / after Shutdown).
CoreWorker* GlobalCoreWorker();
void SetGlobalCoreWorker(CoreWorker* cw);

// Runs one task through the function table (worker side), one view per
// argument. Fills the reply with the value or the error; never throws.
// `actor`: the instance a method call runs on (null for functions), of
// class `actor_class` (a typeid name), whose methods other languages name
// without the class ("Add" for "Counter::Add").
void ExecuteTask(const rpc::TaskSpec& spec,
                 const std::vector<std::string_view>& args,
                 uint64_t max_return_bytes, rpc::PushTaskReply* reply,
                 void* actor = nullptr, const std::string& actor_class = "");
// The same with the spec's inline arguments, returns up to kInlineThreshold.
void ExecuteTask(const rpc::TaskSpec& spec, rpc::PushTaskReply* reply);

// Workers of the Python interpreter `executable` (an absolute path) with
// `path` first on sys.path, in `cwd`; their fork server imports
// `preimport` (comma-separated modules) before forking.
rpc::WorkerRuntime PythonRuntime(const std::string& executable,
                                 const std::vector<std::string>& path,
                                 const std::string& cwd,
                                 const std::string& preimport);
// loom::Init for a language runtime's driver (Python): its tasks and
// actors run in workers of `runtime`.
void InitWithRuntime(const InitOptions& options,
                     const rpc::WorkerRuntime& runtime);
// The session directory of the cluster this process joined or started.
std::string SessionDir();

// Loads every shared library named (files, or *.so in directories).
absl::Status LoadCode(const std::vector<std::string>& paths);

}  // namespace loom

#endif  // LOOM_RUNTIME_CORE_WORKER_H_
