#include "runtime/task_submitter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/spread_dealer.h"
#include "runtime/task_args.h"
#include "src/common/async_call.h"
#include "src/common/rpc.h"

namespace loom {

struct TaskSubmitter::Lease {
  std::string lease_id;
  std::string raylet;
  std::string node_id;  // where the worker runs
  std::string worker_address;
  absl::flat_hash_set<grpc::ClientContext*> pushes;  // in flight
  std::shared_ptr<rpc::CoreWorker::Stub> stub;
  int inflight = 0;
  int pushed_total = 0;  // tasks ever pushed under this lease
  // Pushes answered OK whose bookkeeping (OnPushReply) has not run yet: the
  // caller may already hold the value and submit again, and the worker is
  // free for it.
  std::atomic<int> answered{0};
  absl::Time idle_since;
  bool dead = false;
  // Once dropped as failed: whether its raylet said why the worker died
  // (ReturnWorker's reply), the cause if it killed it, and the failures
  // that wait to know it.
  bool death_known = false;
  std::optional<rpc::ErrorInfo> death;
  std::vector<std::function<void()>> on_death_known;
};

struct TaskSubmitter::KeyState {
  std::string key;
  rpc::Resources resources;
  rpc::SchedulingStrategy strategy;
  std::deque<rpc::TaskSpec> queue;
  std::vector<std::shared_ptr<Lease>> leases;
  int requesting = 0;  // lease requests in flight
  bool pump_posted = false;
  // SPREAD only: deals the tasks to the nodes in turn.
  std::unique_ptr<SpreadDealer> dealer;
  bool hold_timer = false;  // a Pump is posted for when a hold ends
  int lease_failures = 0;
  double avg_run_us = -1;  // moving average of how long tasks run
  int max_calls = 0;       // > 0: tasks per worker before it is replaced
  // Whether `lease` has run its share and takes no more tasks.
  bool UsedUp(const Lease& lease) const {
    return max_calls > 0 && lease.pushed_total >= max_calls;
  }
};

// One client call: context, request and reply live until the callback.
struct TaskSubmitter::Call {
  rpc::Context ctx;
  std::string raylet;    // the raylet a lease request went to
  bool spilled = false;  // it went there on a spillback
  // The worker could not read a lost argument and the task runs again
  // (RunsAgainForLostArgument), decided once as the reply lands.
  bool runs_again = false;
  rpc::LeaseRequest lease_req;
  rpc::LeaseReply lease_reply;
  rpc::PushTaskRequest push_req;
  rpc::PushTaskReply push_reply;
  rpc::ReturnWorkerRequest return_req;
  rpc::ReturnWorkerReply return_reply;
};

TaskSubmitter::TaskSubmitter(Options options) : options_(std::move(options)) {}

void TaskSubmitter::ArmIdleCheck(absl::Duration after) {
  // One timer, set when a lease goes idle: a worker with no leases does
  // not wake to look for idle ones.
  if (idle_check_armed_ || shutting_down_) return;
  idle_check_armed_ = true;
  options_.loop->PostAfter(after, [this] { ReturnIdleLeases(); });
}

TaskSubmitter::~TaskSubmitter() { Shutdown(); }

void TaskSubmitter::Shutdown() {
  if (options_.loop->IsLoopThread() || shutdown_called_.exchange(true)) return;
  options_.loop->RunSync([this] {
    if (shutting_down_) return;
    shutting_down_ = true;
    for (auto& [key, ks] : keys_) {
      for (auto lease : std::vector<std::shared_ptr<Lease>>(ks->leases)) {
        DropLease(*ks, lease, false);
      }
    }
  });
  // Give the lease returns a moment, then cancel whatever is still open.
  calls_.Shutdown(absl::Milliseconds(500));
}

std::shared_ptr<rpc::Raylet::Stub> TaskSubmitter::RayletStub(
    const std::string& address) {
  return options_.clients->Stub<rpc::Raylet>(address);
}

void TaskSubmitter::Submit(rpc::TaskSpec spec, std::string key, int max_calls,
                           std::optional<rpc::WorkerRuntime> runtime) {
  options_.counters->Count(options_.counters->submitted);
  Opened();
  // Recorded on the loop, as every later state is: one thread records.
  int64_t now = options_.events ? TaskEvents::Now() : 0;
  options_.loop->Post([this, spec = std::move(spec), key = std::move(key),
                       max_calls, runtime = std::move(runtime), now]() mutable {
    if (options_.events) {
      // Without ObjectRef arguments it is ready as it is submitted.
      bool refs = std::any_of(spec.args().begin(), spec.args().end(),
                              [](const auto& a) { return a.has_ref(); });
      options_.events->RecordAt(spec,
                                {{TaskEvents::kSubmitted, now},
                                 {TaskEvents::kArgsReady, refs ? 0 : now}});
    }
    if (max_calls > 0) max_calls_[key] = max_calls;
    if (runtime) runtimes_[key] = std::move(*runtime);
    Resolve(std::move(spec), std::move(key));
  });
}

void TaskSubmitter::Resubmit(rpc::TaskSpec spec, std::string key) {
  options_.counters->Count(options_.counters->retried);
  Opened();
  RecordEvent(options_.events, spec, TaskEvents::kSubmitted);
  options_.loop->Post(
      [this, spec = std::move(spec), key = std::move(key)]() mutable {
        Resolve(std::move(spec), std::move(key));
      });
}

void TaskSubmitter::Resolve(rpc::TaskSpec spec, std::string key) {
  // Each dependency is held (SubmitTask took a reference) until it is
  // inlined; then the task is enqueued on the loop.
  auto pending = std::make_shared<rpc::TaskSpec>(std::move(spec));
  bool refs = std::any_of(pending->args().begin(), pending->args().end(),
                          [](const auto& a) { return a.has_ref(); });
  WhenArgsReady(options_.objects, options_.loop, *pending,
                [this, pending, refs, key = std::move(key)] {
                  auto error = InlineArgs(options_.objects, pending.get());
                  if (error) return Fail(*pending, *error);
                  if (refs) {
                    RecordEvent(options_.events, *pending,
                                TaskEvents::kArgsReady);
                  }
                  Enqueue(std::move(*pending), key);
                });
}

void TaskSubmitter::Enqueue(rpc::TaskSpec spec, const std::string& key) {
  if (cancelled_.erase(spec.task_id())) {
    return Fail(spec, MakeError(rpc::ErrorInfo::TASK_CANCELLED,
                                "the task was cancelled before it ran"));
  }
  auto& ks = keys_[key];
  if (!ks) {
    ks = std::make_unique<KeyState>();
    ks->key = key;
    ks->resources = spec.resources();
    ks->strategy = spec.strategy();
    if (auto it = max_calls_.find(key); it != max_calls_.end()) {
      ks->max_calls = it->second;
    }
    if (ks->strategy.kind() == rpc::SchedulingStrategy::SPREAD) {
      ks->dealer = std::make_unique<SpreadDealer>(
          SpreadDealer::Options{options_.spread_slack, options_.spread_hold});
    }
  }
  ks->queue.push_back(std::move(spec));
  // Pump once per burst of submissions, so that the queue shows the backlog.
  if (!ks->pump_posted) {
    ks->pump_posted = true;
    options_.loop->Post([this, k = ks.get()] {
      k->pump_posted = false;
      Pump(*k);
    });
  }
}

void TaskSubmitter::Pump(KeyState& ks) {
  if (shutting_down_) return;
  SpreadDealer* dealer = ks.dealer.get();
  absl::Time now = dealer ? options_.loop->clock()->Now() : absl::Time();
  // SPREAD: a lease takes a task only in its node's turn.
  auto may_take = [&](const Lease& lease) {
    return !ks.queue.empty() && !ks.UsedUp(lease) &&
           (dealer == nullptr || dealer->MayTake(lease.raylet, now));
  };
  auto push_next = [&](const std::shared_ptr<Lease>& lease) {
    rpc::TaskSpec spec = std::move(ks.queue.front());
    ks.queue.pop_front();
    if (dealer) dealer->Took(lease->raylet);
    Push(ks, lease, std::move(spec));
  };
  // Idle workers first, one task each.
  for (auto& lease : ks.leases) {
    if (lease->inflight - lease->answered.load() == 0 && may_take(*lease)) {
      push_next(lease);
    }
  }
  // Pipeline onto busy workers only for short tasks and a deep backlog: a
  // task queued behind a long one on a busy worker would wait for it, while
  // a new lease may run it at once.
  // Never for SPREAD: each task goes to the next node in turn.
  bool pipeline = dealer == nullptr && ks.avg_run_us >= 0 &&
                  ks.avg_run_us < 2000 && ks.queue.size() > ks.leases.size();
  if (pipeline) {
    for (auto& lease : ks.leases) {
      while (lease->inflight < options_.max_inflight_per_worker &&
             may_take(*lease)) {
        push_next(lease);
      }
    }
  }
  // One lease request in flight while tasks wait. SPREAD keeps several,
  // while there are more tasks than leases (in flight too: a node must be
  // asked before the first lease has run a backlog alone), each placed on
  // the next node in turn, so that the nodes' workers start together.
  size_t want = std::min<size_t>(ks.queue.size(), 1);
  if (dealer && !ks.queue.empty()) {
    size_t tasks = ks.queue.size();
    for (const auto& lease : ks.leases) tasks += lease->inflight;
    size_t more = tasks > ks.leases.size() ? tasks - ks.leases.size() : 0;
    want = std::min<size_t>(more, options_.spread_lease_requests);
  }
  while (static_cast<size_t>(ks.requesting) < want) {
    ks.requesting++;
    if (dealer) dealer->Placing(now);
    RequestLease(ks, options_.local_raylet, false);
  }
  // Held back for a node whose lease is late: look again when it stops
  // counting.
  if (dealer && !ks.queue.empty() && !ks.hold_timer) {
    if (auto end = dealer->HoldEnds(now)) {
      ks.hold_timer = true;
      options_.loop->PostAfter(*end - now, [this, k = &ks] {
        k->hold_timer = false;
        Pump(*k);
      });
    }
  }
}

std::string TaskSubmitter::DataNode(const rpc::TaskSpec& spec) {
  // Arguments in a store are above the inline threshold: the node holding
  // the most of them holds most of the bytes, roughly.
  std::map<std::string, int> count;
  for (const auto& arg : spec.args()) {
    if (arg.has_ref() && !arg.ref().store_node_id().empty()) {
      count[arg.ref().store_node_id()]++;
    }
  }
  std::string best;
  int most = 0;
  for (const auto& [node, n] : count) {
    if (n > most) {
      best = node;
      most = n;
    }
  }
  return best;
}

void TaskSubmitter::RequestLease(KeyState& ks, const std::string& raylet,
                                 bool no_spillback) {
  auto* call = new Call;
  call->lease_req.set_job_id(options_.job.Binary());
  *call->lease_req.mutable_resources() = ks.resources;
  call->lease_req.set_requester_worker_id(options_.worker_id.Binary());
  call->lease_req.set_no_spillback(no_spillback);
  for (const auto& p : options_.code_search_path) {
    call->lease_req.add_code_search_path(p);
  }
  auto own = runtimes_.find(ks.key);
  *call->lease_req.mutable_runtime() =
      own == runtimes_.end() ? runtime_ : own->second;
  *call->lease_req.mutable_strategy() = ks.strategy;
  if (!ks.queue.empty()) {
    const rpc::TaskSpec& next = ks.queue.front();
    call->lease_req.set_preferred_node_id(DataNode(next));
    call->lease_req.set_retriable(next.attempt() < next.max_retries());
  }
  call->raylet = raylet;
  call->spilled = raylet != options_.local_raylet;
  if (!calls_.Start(&call->ctx)) {  // shutting down
    delete call;
    return;
  }
  rpc::AsyncCall(*RayletStub(raylet),
                 &rpc::Raylet::Stub::PrepareAsyncRequestWorkerLease, &call->ctx,
                 call->lease_req, &call->lease_reply,
                 [this, call, key = ks.key](grpc::Status s) {
                   options_.loop->Post([this, call, key, s] {
                     OnLeaseReply(key, call, s);
                     calls_.Finish(&call->ctx);
                     delete call;
                   });
                 });
}

void TaskSubmitter::OnLeaseReply(const std::string& key, Call* call,
                                 const grpc::Status& s) {
  KeyState& ks = *keys_[key];
  const rpc::LeaseReply& reply = call->lease_reply;
  // SPREAD: the request stops holding the others where it waited once what
  // it led to (a lease, a node asked) counts instead.
  auto settle = [&] {
    if (!ks.dealer) return;
    if (call->spilled) {
      ks.dealer->Answered(call->raylet);
    } else {
      ks.dealer->Placed();
    }
  };
  if (shutting_down_ || !s.ok() ||
      (reply.outcome() != rpc::LeaseReply::GRANTED &&
       reply.outcome() != rpc::LeaseReply::SPILLBACK)) {
    settle();
  }
  if (shutting_down_) {
    if (s.ok() && reply.outcome() == rpc::LeaseReply::GRANTED) {
      auto lease = std::make_shared<Lease>();
      lease->lease_id = reply.lease_id();
      lease->raylet = call->raylet;
      DropLease(ks, lease, false);
    }
    return;
  }
  if (!s.ok()) {
    ks.requesting--;
    if (++ks.lease_failures >= 50) {
      FailQueued(ks, MakeError(rpc::ErrorInfo::WORKER_CRASHED,
                               "cannot lease a worker: raylet " + call->raylet +
                                   " unreachable: " + s.error_message()));
      ks.lease_failures = 0;
      return;
    }
    spdlog::warn("lease request to {} failed: {}; retrying", call->raylet,
                 s.error_message());
    options_.loop->PostAfter(absl::Milliseconds(200),
                             [this, key] { Pump(*keys_[key]); });
    return;
  }
  ks.lease_failures = 0;
  switch (reply.outcome()) {
    case rpc::LeaseReply::GRANTED: {
      ks.requesting--;
      auto lease = std::make_shared<Lease>();
      lease->lease_id = reply.lease_id();
      lease->raylet = call->raylet;
      lease->worker_address =
          absl::StrCat(reply.worker().host(), ":", reply.worker().port());
      lease->node_id = reply.worker().node_id();
      lease->stub =
          options_.clients->Stub<rpc::CoreWorker>(lease->worker_address);
      lease->idle_since = options_.loop->clock()->Now();
      ks.leases.push_back(lease);
      ArmIdleCheck(options_.lease_idle_timeout);
      if (ks.dealer) ks.dealer->Leased(lease->raylet, lease->idle_since);
      settle();
      Pump(ks);
      if (lease->inflight == 0 && ks.queue.empty()) {
        // Nothing left to run: the idle timer returns it.
      }
      break;
    }
    case rpc::LeaseReply::SPILLBACK: {
      // Spilled: that node grants or queues it. Sent to the data's node
      // to decide: it runs it if it can, else places it elsewhere.
      std::string target =
          absl::StrCat(reply.spillback_host(), ":", reply.spillback_port());
      if (ks.dealer) ks.dealer->Asked(target, options_.loop->clock()->Now());
      settle();
      RequestLease(ks, target, !reply.spillback_may_spill());
      break;
    }
    case rpc::LeaseReply::INFEASIBLE:
      ks.requesting--;
      FailQueued(ks, MakeError(rpc::ErrorInfo::INFEASIBLE, reply.message()));
      break;
    default:
      ks.requesting--;
      FailQueued(ks, MakeError(rpc::ErrorInfo::INVALID, reply.message()));
      break;
  }
}

void TaskSubmitter::Push(KeyState& ks, const std::shared_ptr<Lease>& lease,
                         rpc::TaskSpec spec) {
  lease->inflight++;
  lease->pushed_total++;
  pushed_[spec.task_id()] = lease;
  RecordEvent(options_.events, spec, TaskEvents::kPushed);
  auto* call = new Call;
  *call->push_req.mutable_spec() = std::move(spec);
  call->push_req.set_lease_id(lease->lease_id);
  if (!calls_.Start(&call->ctx)) {  // shutting down
    lease->inflight--;
    pushed_.erase(call->push_req.spec().task_id());
    Fail(call->push_req.spec(),
         MakeError(rpc::ErrorInfo::TASK_CANCELLED,
                   "not sent: this process is shutting down"));
    delete call;
    return;
  }
  lease->pushes.insert(&call->ctx);
  rpc::AsyncCall(*lease->stub, &rpc::CoreWorker::Stub::PrepareAsyncPushTask,
                 &call->ctx, call->push_req, &call->push_reply,
                 [this, call, lease, key = ks.key](grpc::Status s) {
                   // The value lands now, on gRPC's thread, so that a caller
                   // blocked in Get wakes without waiting for the loop;
                   // bookkeeping follows there.
                   if (s.ok()) {
                     lease->answered.fetch_add(1);
                     call->runs_again = RunsAgainForLostArgument(*call);
                     if (!call->runs_again) ResolveReturn(call, key);
                   }
                   options_.loop->Post([this, call, lease, key, s] {
                     lease->pushes.erase(&call->ctx);
                     OnPushReply(key, lease, call, s);
                     calls_.Finish(&call->ctx);
                     delete call;
                   });
                 });
}

void TaskSubmitter::OnPushReply(const std::string& key,
                                const std::shared_ptr<Lease>& lease, Call* call,
                                const grpc::Status& s) {
  KeyState& ks = *keys_[key];
  if (s.ok()) lease->answered.fetch_sub(1);
  if (--lease->inflight == 0) {
    lease->idle_since = options_.loop->clock()->Now();
    ArmIdleCheck(options_.lease_idle_timeout);
  }
  const rpc::TaskSpec& spec = call->push_req.spec();
  pushed_.erase(spec.task_id());
  bool cancelled = cancelled_.erase(spec.task_id()) > 0;
  if (!s.ok() && cancelled) {
    if (!lease->dead) DropLease(ks, lease, true);
    Fail(spec, MakeError(rpc::ErrorInfo::TASK_CANCELLED,
                         "the task was cancelled while it ran (force)"));
  } else if (s.ok() && call->runs_again) {
    // A system failure: the argument is rebuilt (or found elsewhere) and
    // the task runs again once it is ready, as a retry.
    ObjectId lost = *ArgumentLost(call->push_reply);
    rpc::TaskSpec retry = spec;
    retry.set_attempt(retry.attempt() + 1);
    NodeId node;
    for (auto& arg : *retry.mutable_args()) {
      if (arg.has_ref() && arg.ref().object_id() == lost.Binary()) {
        if (auto n = NodeId::FromBinary(arg.ref().store_node_id()); n.ok()) {
          node = *n;
        }
        arg.mutable_ref()->clear_store_node_id();
      }
    }
    spdlog::warn("{}: {}; running it again", spec.function_name(),
                 call->push_reply.error().message());
    RecordEvent(options_.events, spec, TaskEvents::kFailed,
                &call->push_reply.error(), /*retried=*/true);
    options_.on_argument_lost(lost, node);
    Resubmit(std::move(retry), key);
  } else if (s.ok()) {
    if (call->push_reply.ok()) {
      RecordEvent(options_.events, spec, TaskEvents::kFinished);
    } else {
      RecordEvent(options_.events, spec, TaskEvents::kFailed,
                  &call->push_reply.error());
    }
    double run = static_cast<double>(call->push_reply.run_us());
    ks.avg_run_us = ks.avg_run_us < 0 ? run : 0.8 * ks.avg_run_us + 0.2 * run;
    ReleaseStoreArgs(spec);
    if (ks.UsedUp(*lease) && lease->inflight == 0 && !lease->dead) {
      // max_calls: its worker has run its share; the raylet stops it and
      // the next task gets a fresh one.
      DropLease(ks, lease, /*failed=*/true);
    }
  } else if (!shutting_down_) {
    // The worker is gone (or unreachable): drop the lease, retry the task.
    if (!lease->dead) {
      spdlog::warn("worker {} failed: {}", lease->worker_address,
                   s.error_message());
      DropLease(ks, lease, true);
    }
    rpc::TaskSpec retry = spec;
    if (retry.attempt() < retry.max_retries()) {
      rpc::ErrorInfo crash =
          MakeError(rpc::ErrorInfo::WORKER_CRASHED, s.error_message());
      RecordEvent(options_.events, spec, TaskEvents::kFailed, &crash,
                  /*retried=*/true);
      retry.set_attempt(retry.attempt() + 1);
      options_.counters->Count(options_.counters->retried);
      ks.queue.push_front(std::move(retry));
    } else {
      // The raylet may have killed the worker (out of memory): fail with
      // its cause once the lease's return says.
      WhenDeathKnown(lease, [this, lease, spec, why = s.error_message()] {
        Fail(spec, DeathError(spec, lease, why));
      });
    }
  }
  Pump(ks);
}

bool TaskSubmitter::RunsAgainForLostArgument(const Call& call) const {
  const rpc::TaskSpec& spec = call.push_req.spec();
  return options_.on_argument_lost && spec.attempt() < spec.max_retries() &&
         ArgumentLost(call.push_reply).has_value();
}

void TaskSubmitter::WhenDeathKnown(const std::shared_ptr<Lease>& lease,
                                   std::function<void()> then) {
  if (lease->death_known) return then();
  lease->on_death_known.push_back(std::move(then));
}

void TaskSubmitter::DeathLearned(const std::shared_ptr<Lease>& lease,
                                 const rpc::ErrorInfo* death) {
  if (lease->death_known) return;
  lease->death_known = true;
  if (death != nullptr && death->kind() != rpc::ErrorInfo::TASK_ERROR) {
    lease->death = *death;
    spdlog::warn("worker {}: {}", lease->worker_address, death->message());
  }
  for (auto& then : std::exchange(lease->on_death_known, {})) then();
}

rpc::ErrorInfo TaskSubmitter::DeathError(const rpc::TaskSpec& spec,
                                         const std::shared_ptr<Lease>& lease,
                                         const std::string& why) {
  std::string retries =
      absl::StrCat(spec.max_retries(), " retries are used up");
  if (lease->death) {
    rpc::ErrorInfo e = *lease->death;
    // Shown after the task's name: "f: the memory monitor of node ...".
    e.set_message(absl::StrCat(e.message(), "; ", retries));
    e.set_task_name(spec.function_name());
    return e;
  }
  return MakeError(rpc::ErrorInfo::WORKER_CRASHED,
                   absl::StrCat("the worker running ", spec.function_name(),
                                " died (", why, ") and ", retries),
                   spec.function_name());
}

void TaskSubmitter::OnNodeDead(const std::string& node_id) {
  for (auto& [key, ks] : keys_) {
    std::vector<std::shared_ptr<Lease>> lost;
    for (const auto& lease : ks->leases) {
      if (lease->node_id == node_id) lost.push_back(lease);
    }
    for (const auto& lease : lost) {
      spdlog::warn("worker {}: its node died; retrying its {} tasks",
                   lease->worker_address, lease->pushes.size());
      // Each fails as if the connection broke: retried on another lease.
      for (grpc::ClientContext* ctx : lease->pushes) ctx->TryCancel();
      // Nothing more goes there; its raylet cannot say more.
      if (!lease->dead) DropLease(*ks, lease, true);
      DeathLearned(lease, nullptr);
    }
  }
}

void TaskSubmitter::Cancel(const TaskId& task, bool force, bool keep_children) {
  options_.loop->Post([this, id = task.Binary(), force, keep_children] {
    for (auto& [key, ks] : keys_) {
      for (auto it = ks->queue.begin(); it != ks->queue.end(); ++it) {
        if (it->task_id() != id) continue;
        rpc::TaskSpec spec = std::move(*it);
        ks->queue.erase(it);
        return Fail(spec, MakeError(rpc::ErrorInfo::TASK_CANCELLED,
                                    "the task was cancelled before it ran"));
      }
    }
    auto ret = ObjectId::ForReturn(*TaskId::FromBinary(id), 1);
    if (options_.objects->TryGet(ret)) return;  // done already
    cancelled_.insert(id);  // still resolving its arguments, or pushed
    auto pushed = pushed_.find(id);
    if (pushed == pushed_.end()) return;
    struct CancelCall {
      rpc::Context ctx;
      rpc::CancelTaskRequest req;
      rpc::CancelTaskReply reply;
    };
    auto* call = new CancelCall;
    call->req.set_task_id(id);
    call->req.set_force(force);
    call->req.set_keep_children(keep_children);
    call->req.set_lease_id(pushed->second->lease_id);
    call->ctx.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(5));
    rpc::AsyncCall(*pushed->second->stub,
                   &rpc::CoreWorker::Stub::PrepareAsyncCancelTask, &call->ctx,
                   call->req, &call->reply,
                   [call](grpc::Status) { delete call; });
  });
}

void TaskSubmitter::ResolveReturn(Call* call, const std::string& key) {
  Closed();
  // Lineage first, while the returns are still pending in the table: their
  // frees count it down from then on. Small values live in the table and
  // are never lost: the fast path keeps nothing.
  const rpc::TaskSpec& spec = call->push_req.spec();
  if (options_.lineage && ReturnsInStore(call->push_reply)) {
    if (spec.contained_size() > 0) {
      options_.lineage->Unrecoverable(
          *TaskId::FromBinary(spec.task_id()), spec.num_returns(),
          "its task's arguments carried object refs, and lineage is not "
          "kept for such tasks");
    } else {
      options_.lineage->Record(spec, key);
    }
  }
  ApplyReply(options_.objects, options_.self_address, call->push_req.spec(),
             call->push_reply);
}

void TaskSubmitter::DropLease(KeyState& ks, const std::shared_ptr<Lease>& lease,
                              bool failed) {
  lease->dead = true;
  if (failed) options_.clients->Drop(lease->worker_address);
  // Returned whole: nothing to learn of its worker.
  if (!failed) DeathLearned(lease, nullptr);
  auto& v = ks.leases;
  auto gone = std::remove(v.begin(), v.end(), lease);
  if (gone != v.end() && ks.dealer) ks.dealer->Dropped(lease->raylet);
  v.erase(gone, v.end());
  auto* call = new Call;
  call->return_req.set_lease_id(lease->lease_id);
  call->return_req.set_worker_failed(failed);
  rpc::SetTimeout(&call->ctx, 2000);
  if (!calls_.Start(&call->ctx)) {  // shutting down: the raylet reclaims it
    delete call;
    DeathLearned(lease, nullptr);
    return;
  }
  rpc::AsyncCall(*RayletStub(lease->raylet),
                 &rpc::Raylet::Stub::PrepareAsyncReturnWorker, &call->ctx,
                 call->return_req, &call->return_reply,
                 [this, call, lease, failed](grpc::Status s) {
                   if (failed) {
                     // Learned on the loop; a failed return says nothing
                     // more.
                     std::optional<rpc::ErrorInfo> death;
                     if (s.ok() && call->return_reply.has_death()) {
                       death = call->return_reply.death();
                     }
                     options_.loop->Post([this, lease, death] {
                       DeathLearned(lease, death ? &*death : nullptr);
                     });
                   }
                   calls_.Finish(&call->ctx);
                   delete call;
                 });
}

void TaskSubmitter::FailQueued(KeyState& ks, const rpc::ErrorInfo& error) {
  while (!ks.queue.empty()) {
    rpc::TaskSpec spec = std::move(ks.queue.front());
    ks.queue.pop_front();
    rpc::ErrorInfo e = error;
    e.set_task_name(spec.function_name());
    Fail(spec, std::move(e));
  }
}

void TaskSubmitter::ReleaseStoreArgs(const rpc::TaskSpec& spec) {
  ReleaseArgs(options_.objects, spec);
}

void TaskSubmitter::Opened() {
  absl::MutexLock lock(&open_mu_);
  ++open_;
}

void TaskSubmitter::Closed() {
  absl::MutexLock lock(&open_mu_);
  --open_;
}

bool TaskSubmitter::WaitForRoom(int64_t max) {
  if (max <= 0) return true;
  absl::MutexLock lock(&open_mu_);
  if (open_ < max) return true;
  auto room = [this, max]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(open_mu_) {
    return open_ < max;
  };
  open_mu_.Await(absl::Condition(&room));
  return false;
}

void TaskSubmitter::Fail(const rpc::TaskSpec& spec, rpc::ErrorInfo error) {
  Closed();
  ReleaseStoreArgs(spec);
  options_.counters->Count(options_.counters->failed);
  if (error.task_name().empty()) error.set_task_name(spec.function_name());
  RecordEvent(options_.events, spec, TaskEvents::kFailed, &error);
  SetReturnsError(options_.objects, spec, error);
}

void TaskSubmitter::ReturnIdleLeases() {
  idle_check_armed_ = false;
  if (shutting_down_) return;
  absl::Time now = options_.loop->clock()->Now();
  // The next lease to reach its idle timeout, if any is idle and kept.
  absl::Duration next = absl::InfiniteDuration();
  for (auto& [key, ks] : keys_) {
    for (auto lease : std::vector<std::shared_ptr<Lease>>(ks->leases)) {
      if (lease->inflight != 0) continue;  // arms the check when it ends
      absl::Duration left =
          lease->idle_since + options_.lease_idle_timeout - now;
      if (left <= absl::ZeroDuration() && ks->queue.empty()) {
        // max_calls: the worker goes too, so that no worker runs more
        // than max_calls of the key's tasks across leases.
        DropLease(*ks, lease, /*failed=*/ks->max_calls > 0);
      } else {
        next = std::min(next, std::max(left, absl::Milliseconds(100)));
      }
    }
  }
  if (next != absl::InfiniteDuration()) ArmIdleCheck(next);
}

}  // namespace loom
