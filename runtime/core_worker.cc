#include "runtime/core_worker.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "object_store/layout.h"
#include "object_store/store_client.h"
#include "runtime/actor_submitter.h"
#include "runtime/core_worker_service.h"
#include "runtime/driver_logs.h"
#include "runtime/lineage.h"
#include "runtime/metric_recorder.h"
#include "runtime/owner_client.h"
#include "runtime/raylet_client.h"
#include "runtime/task_args.h"
#include "runtime/task_submitter.h"
#include "runtime/tensor_codec.h"
#include "runtime/thread_caps.h"
#include "runtime/worker_checks.h"
#include "src/common/daemon.h"
#include "src/common/head_events.h"
#include "src/common/tls.h"
#include "src/common/wire.h"

namespace loom {
namespace {

// The task a thread is running, for deriving child task and put ids.
struct TaskContext {
  TaskId task;
  uint32_t children = 0;
  uint32_t puts = 0;
  int64_t run_start_us = 0, run_end_us = 0;  // task events
};
thread_local TaskContext* tls_task = nullptr;

// How long a worker's get or wait waits before it lends its CPU.
constexpr absl::Duration kLendAfter = absl::Milliseconds(50);

// Core workers made in this process so far: never reset.
std::atomic<uint32_t> g_incarnations{0};

}  // namespace

absl::Time Deadline(int64_t timeout_ms) {
  return timeout_ms < 0 ? absl::InfiniteFuture()
                        : absl::Now() + absl::Milliseconds(timeout_ms);
}

int64_t RemainingMs(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  return std::max<int64_t>(0,
                           absl::ToInt64Milliseconds(deadline - absl::Now()));
}

CoreWorker::CoreWorker(Options options)
    : options_(std::move(options)),
      loop_(options_.is_driver ? "driver" : "worker"),
      counters_(std::make_unique<TaskCounters>()),
      incarnation_(++g_incarnations) {}

absl::StatusOr<std::unique_ptr<CoreWorker>> CoreWorker::Create(
    Options options) {
  if (const auto& tls = ProcessTls(); !tls.ok()) return tls.status();  // now
  std::unique_ptr<CoreWorker> cw(new CoreWorker(std::move(options)));
  absl::Status s = cw->Connect();
  if (!s.ok()) return s;
  return cw;
}

absl::Status CoreWorker::Connect() {
  // A driver talks to every actor it made: a socket each.
  if (options_.is_driver) RaiseDescriptorLimit();
  loop_.Start();
  service_ = std::make_unique<CoreWorkerService>(this);
  if (absl::Status s = service_->Start(options_.host, &port_); !s.ok()) {
    return s;
  }
  address_ = absl::StrCat(options_.host, ":", port_);
  owners_ = std::make_unique<OwnerClient>(&loop_, &clients_);
  lineage_ = std::make_unique<Lineage>(
      MaxLineageBytes(options_.max_lineage_bytes), &objects_);
  counters_->on_count = [this] { WakeReports(); };
  MetricRecorder::Global().set_on_change(this, [this] { WakeReports(); });
  objects_.set_on_owned_free([this](const ObjectId& id) {
    WakeReports();  // what it holds changed: the raylet may reap it when idle
    lineage_->OnFreed(id);
    if (streams_open_.load(std::memory_order_relaxed) > 0 && id.Index() == 1) {
      streams_.Close(id.Task());  // a streaming task's return: its stream
    }
    std::optional<ActorId> actor;
    {
      absl::MutexLock lock(&handles_mu_);
      auto it = handles_.find(id);
      if (it == handles_.end()) return;
      actor = it->second;
      handles_.erase(it);
    }
    // The last handle is gone: the actor stops (off the caller's thread),
    // once the calls this process sent it are answered.
    auto stop = [this, actor = *actor] {
      if (shut_down_) return;
      absl::Status s = KillActor(actor, /*no_restart=*/true);
      if (!s.ok())
        spdlog::warn("stopping actor {}: {}", actor.Hex(), s.ToString());
    };
    if (actor_submitter_) {
      actor_submitter_->WhenIdle(*actor, std::move(stop));
    } else {
      loop_.Post(std::move(stop));
    }
  });
  objects_.set_on_fetch([this](const ObjectId& id, const std::string& owner) {
    FetchBorrowed(id, owner);
  });
  objects_.set_on_release(
      [this](const ObjectId& id, const std::string& owner, int64_t units) {
        owners_->RemoveBorrows(owner, id, units, address_);
      });
  raylet_ = std::make_unique<RayletClient>(options_.raylet_address,
                                           options_.gcs_address);
  if (!options_.store_socket.empty()) {
    auto store = ObjectStoreClient::Connect(options_.store_socket);
    if (!store.ok()) return store.status();
    store_ = std::move(*store);
    store_->set_owner(address_);  // what it puts; returns name their caller
    // The owner frees what it put in this node's store when the last
    // reference is gone.
    objects_.set_on_free([this](const ObjectId& id, const NodeId& node) {
      if (shut_down_) return;
      // This node's raylet deletes its copy, the primary on `node`, and the
      // copies the head's directory knows of.
      raylet_->FreeObject(id, node);
    });
  }
  if (options_.is_driver) {
    rpc::JobQuota quota;  // a submitted job's, which max_pending_tasks_ keeps
    auto job = raylet_->AddJob(getpid(), address_, options_.runtime, &quota);
    if (!job.ok()) {
      return absl::UnavailableError(
          absl::StrCat("cannot register a job with the head at ",
                       options_.gcs_address, ": ", job.status().message()));
    }
    job_ = *job;
    max_pending_tasks_ = quota.max_pending_tasks();
    // A process that starts Loom again (shutdown, then init) may be given
    // the job number of its last driver (a new head counts from the
    // clock, in steps of 250 ms): a root of its own keeps every task and
    // object id of this driver apart from the last one's.
    driver_task_ = TaskId::ForDriver(job_);
    if (incarnation_ > 1) {
      driver_task_ = TaskId::ForChild(driver_task_, 0x80000000u | incarnation_);
    }
    auto node = raylet_->RegisterDriver(job_, getpid(), options_.worker_id,
                                        options_.runtime);
    if (!node.ok()) {
      return absl::UnavailableError(absl::StrCat("cannot reach the raylet at ",
                                                 options_.raylet_address, ": ",
                                                 node.status().message()));
    }
    node_id_ = *node;
    // A job whose driver's node dies ends with it: the head must know
    // which node that is.
    if (absl::Status s =
            raylet_->SetJobNode(job_, getpid(), address_, node_id_);
        !s.ok()) {
      spdlog::warn("the head does not know this driver's node: {}",
                   s.ToString());
    }
    StartTaskEvents();
    StartSubmitters(options_.code_search_path);
    if (options_.log_to_driver && !options_.gcs_address.empty()) {
      driver_logs_ = std::make_unique<DriverLogs>(
          DriverLogs::Options{&loop_, &clients_, options_.gcs_address, job_});
      driver_logs_->Start();
    }
  } else {
    TaskId random = TaskId::FromRandom();
    driver_task_ = random;
    // Tasks may arrive as soon as the raylet knows this worker, and their
    // code calls the API: the worker is the process's core worker first.
    // They queue until the registration's reply names this node: the
    // executor starts only then, so no task sees an unset node id.
    SetGlobalCoreWorker(this);
    auto node = raylet_->RegisterWorker(options_.worker_id, getpid(), port_,
                                        control_key_);
    if (!node.ok()) return node.status();
    node_id_ = *node;
    StartTaskEvents();
    exec_thread_ = std::thread([this] { ExecuteLoop(); });
  }
  loop_.PostAfter(absl::Seconds(1), [this] { ReportStatsPeriodically(); });
  return absl::OkStatus();
}

CoreWorker::~CoreWorker() { Shutdown(); }

void CoreWorker::Shutdown() {
  if (shut_down_.exchange(true)) return;
  MetricRecorder::Global().set_on_change(this, nullptr);
  std::call_once(head_events_once_, [] {});  // none starts from now on
  if (head_events_) head_events_->Shutdown();
  if (driver_logs_) driver_logs_->Shutdown();
  if (submitter_) submitter_->Shutdown();
  if (actor_submitter_) actor_submitter_->Shutdown();
  loop_.RunSync([this] { ReportStats(); });
  if (options_.is_driver && raylet_) {
    absl::Status s = raylet_->MarkJobFinished(job_);
    if (!s.ok()) spdlog::warn("marking job finished: {}", s.ToString());
  }
  {
    absl::MutexLock lock(&exec_mu_);
    exec_stop_ = true;
    exit_requested_ = true;
  }
  // Parked calls finish before the server stops: waiting borrowers get
  // errors, owners watching us see us go (and drop our borrow units).
  objects_.FailPending(MakeError(rpc::ErrorInfo::OWNER_DIED,
                                 "the owner " + address_ + " shut down"));
  std::vector<std::function<void()>> watchers;
  {
    absl::MutexLock lock(&borrowers_mu_);
    watchers_done_ = true;
    watchers.swap(watchers_);
  }
  for (auto& w : watchers) w();
  if (service_) service_->Shutdown(absl::Milliseconds(200));
  if (exec_thread_.joinable()) exec_thread_.join();
  {
    // PlacementGroupReady's long polls end within a second of shut_down_.
    absl::MutexLock lock(&exec_mu_);
    auto none = [this]() ABSL_SHARED_LOCKS_REQUIRED(exec_mu_) {
      return pg_waiting_ == 0;
    };
    exec_mu_.Await(absl::Condition(&none));
  }
  for (auto& t : exec_pool_) t.join();
  // What the last tasks did reaches the head before the process goes.
  if (events_) events_->Shutdown(absl::Seconds(1));
  if (owners_) owners_->Shutdown();
  loop_.Stop();
  head_events_.reset();  // its timers died with the loop
  submitter_.reset();
}

TaskId CoreWorker::NextTaskId() {
  if (tls_task) return TaskId::ForChild(tls_task->task, ++tls_task->children);
  return TaskId::ForChild(driver_task_, ++driver_children_);
}

absl::StatusOr<std::vector<ObjectId>> CoreWorker::SubmitTask(
    const std::string& function_name, std::vector<internal::Arg> args,
    const internal::TaskOptions& options,
    const std::vector<ObjectId>& contained) {
  if (shut_down_) return absl::FailedPreconditionError("Loom is shut down");
  if (submitter_ == nullptr) {
    return absl::FailedPreconditionError("this worker has no job yet");
  }
  auto demand = ResourceSet::FromMap(options.resources);
  if (!demand.ok()) return demand.status();
  if (!options.resources.count(kCpu)) demand->Set(kCpu, FixedPoint::FromInt(1));
  if (options.max_retries < -1) {
    return absl::InvalidArgumentError("max_retries must be >= -1");
  }
  if (options.num_returns < 1 || options.num_returns > 1000) {
    return absl::InvalidArgumentError("num_returns must be in [1, 1000]");
  }
  if (options.max_calls < 0) {
    return absl::InvalidArgumentError("max_calls must be >= 0");
  }
  if (options.stream_window < -2) {
    return absl::InvalidArgumentError("stream_window must be >= -2");
  }
  TaskId task = NextTaskId();
  rpc::TaskSpec spec;
  spec.set_task_id(task.Binary());
  spec.set_job_id(job_.Binary());
  spec.set_function_name(function_name);
  spec.set_function_key(options.function_key);
  auto strategy = StrategyToProto(options.strategy);
  if (!strategy.ok()) return strategy.status();
  *spec.mutable_strategy() = *strategy;
  if (options.num_returns > 1) spec.set_num_returns(options.num_returns);
  spec.set_stream_window(options.stream_window);
  spec.set_msgpack_values(options.msgpack_values);
  spec.mutable_caller()->set_host(options_.host);
  spec.mutable_caller()->set_port(port_);
  *spec.mutable_resources() = ResourcesToProto(*demand);
  spec.set_max_retries(options.max_retries < 0 ? 1 << 30 : options.max_retries);
  std::vector<ObjectId> deps;
  if (absl::Status s = BuildArgs(std::move(args), &spec, &deps); !s.ok()) {
    return s;
  }
  std::vector<ObjectId> rets = ReturnIds(spec);
  for (const ObjectId& ret : rets) objects_.AddPending(ret);
  if (options.stream_window != 0)
    OpenStream(task, options.stream_window, rets[0]);
  // Hold the arguments now: the caller's refs may be temporaries.
  for (const ObjectId& dep : deps) objects_.AddRef(dep);
  for (const ObjectId& inner : contained) spec.add_contained(inner.Binary());
  // Leases are shared by tasks of one function and shape: how long its
  // tasks run decides whether to pipeline them (as Ray's scheduling keys).
  std::string key = absl::StrCat(
      demand->ToString(), "|", function_name, "|", options.function_key, "|",
      strategy->SerializeAsString(), "|", options.max_calls);
  std::optional<rpc::WorkerRuntime> runtime;
  if (options.env.set) {
    runtime = RuntimeFor(options.env);
    if (runtime->language() == rpc::WorkerRuntime::PYTHON &&
        runtime->python_executable().empty()) {
      return absl::FailedPreconditionError(
          "no Python interpreter for Python calls: set "
          "InitOptions::python_executable or $LOOM_PYTHON");
    }
    absl::StrAppend(&key, "|", static_cast<int>(options.env.language), "|",
                    options.env.packed);
    for (const auto& [k, v] : options.env.env_vars) {
      absl::StrAppend(&key, "|", k, "=", v);
    }
  }
  FollowHeadEvents();
  submitter_->Submit(std::move(spec), std::move(key), options.max_calls,
                     std::move(runtime));
  return rets;
}

rpc::WorkerRuntime CoreWorker::RuntimeFor(
    const internal::WorkerEnv& env) const {
  using Language = internal::WorkerEnv::Language;
  rpc::WorkerRuntime r = options_.runtime;
  if (env.language == Language::kCpp) return rpc::WorkerRuntime();
  if (env.language == Language::kPython &&
      r.language() != rpc::WorkerRuntime::PYTHON) {
    r = options_.python_workers;
  }
  r.mutable_env_vars()->insert(env.env_vars.begin(), env.env_vars.end());
  r.set_runtime_env(env.packed);
  return r;
}

absl::StatusOr<ObjectId> CoreWorker::Put(
    std::string value, const std::vector<ObjectId>& contained) {
  // The value holds the references the caller took on its refs.
  auto hold = [&](const ObjectId& id) {
    if (!contained.empty()) objects_.SetContained(id, contained);
  };
  if (value.size() > kInlineThreshold && store_) {
    ObjectId id = NextPutId();
    absl::Status s = WriteToStore(id, value);
    if (!s.ok()) return s;
    objects_.AddPending(id);
    hold(id);
    objects_.SetInStore(id, node_id_);
    return id;
  }
  if (value.size() > kInlineThreshold) {
    return absl::InvalidArgumentError(
        absl::StrCat("value of ", value.size(),
                     " bytes exceeds the inline limit of ", kInlineThreshold,
                     " bytes; larger values need the object store, "
                     "which is not available yet"));
  }
  ObjectId id = NextPutId();
  objects_.AddPending(id);
  hold(id);
  objects_.SetValue(id, std::move(value));
  return id;
}

template <typename Fn, typename Done>
auto CoreWorker::WhileBlocked(const std::vector<ObjectId>& ids,
                              absl::Time deadline, Fn wait, Done done) {
  // A worker waiting on objects not yet ready lends its CPU to the raylet,
  // unless they are ready within a moment (a borrowed object whose owner
  // answers, one already in this node's store): lending then would only
  // make the raylet start another worker for nothing.
  if (options_.is_driver || objects_.AllReady(ids)) return wait(deadline);
  auto result = wait(std::min(deadline, absl::Now() + kLendAfter));
  if (done(result) || absl::Now() >= deadline) return result;
  raylet_->NotifyBlocked(options_.worker_id, true).IgnoreError();
  result = wait(deadline);
  raylet_->NotifyBlocked(options_.worker_id, false).IgnoreError();
  return result;
}

bool CoreWorker::BlockedWait(const ObjectId& watch, absl::Time deadline,
                             const std::function<bool(absl::Time)>& wait) {
  return WhileBlocked({watch}, deadline, wait, [](bool done) { return done; });
}

std::optional<std::vector<ObjectResult>> CoreWorker::WaitResults(
    const std::vector<ObjectId>& ids, int64_t timeout_ms) {
  absl::Time deadline = Deadline(timeout_ms);
  // The first error ends the wait: the caller raises it at once.
  return WhileBlocked(
      ids, deadline,
      [&](absl::Time until) {
        return objects_.Get(ids, until, /*stop_at_error=*/true);
      },
      [](const auto& results) { return results.has_value(); });
}

bool CoreWorker::WaitReady(const std::vector<ObjectId>& ids,
                           ObjectTable::Progress* progress,
                           int64_t timeout_ms) {
  return WhileBlocked(
      ids, Deadline(timeout_ms),
      [&](absl::Time until) {
        return objects_.WaitReady(ids, progress, until,
                                  /*stop_at_error=*/true);
      },
      [](bool done) { return done; });
}

std::optional<std::vector<ObjectResult>> CoreWorker::Get(
    const std::vector<ObjectId>& ids, int64_t timeout_ms) {
  absl::Time deadline = Deadline(timeout_ms);
  while (true) {
    // A lost object is pending again (being rebuilt) or failed: wait anew.
    auto results = WaitResults(ids, RemainingMs(deadline));
    if (!results || !FetchFromStore(*results, ids, timeout_ms)) return results;
  }
}

ObjectId CoreWorker::NextPutId() {
  return tls_task ? ObjectId::ForPut(tls_task->task, ++tls_task->puts)
                  : ObjectId::ForPut(driver_task_, ++driver_puts_);
}

std::vector<bool> CoreWorker::Wait(const std::vector<ObjectId>& ids,
                                   int num_returns, int64_t timeout_ms) {
  absl::Time deadline = Deadline(timeout_ms);
  return WhileBlocked(
      ids, deadline,
      [&](absl::Time until) { return objects_.Wait(ids, num_returns, until); },
      [num_returns](const std::vector<bool>& ready) {
        return std::count(ready.begin(), ready.end(), true) >= num_returns;
      });
}

std::vector<int> CoreWorker::gpu_ids() const {
  absl::MutexLock lock(const_cast<absl::Mutex*>(&exec_mu_));
  return gpu_ids_;
}

void CoreWorker::HandlePushTask(const rpc::PushTaskRequest& req,
                                rpc::PushTaskReply* reply,
                                std::function<void(absl::Status)> done) {
  // Every field first, then whether this worker may run it (a comparison
  // of ids: no call out on the fast path).
  absl::Status valid =
      ValidatePushedSpec(req.spec(), options_.task_handler != nullptr);
  if (!valid.ok()) return done(valid);
  absl::MutexLock lock(&exec_mu_);
  if (exec_stop_) return done(absl::UnavailableError("worker is exiting"));
  if (absl::Status s = AdmitPush(req); !s.ok()) return done(s);
  Execution e{&req, reply, std::move(done)};
  if (!req.spec().actor_id().empty() && !req.spec().actor_creation()) {
    return QueueInOrder(std::move(e));
  }
  exec_queue_.push_back(std::move(e));
}

void CoreWorker::QueueInOrder(Execution e) {
  const rpc::TaskSpec& spec = e.req->spec();
  CallerQueue& q = callers_[spec.caller_id()];
  if (spec.seq() < q.next) {
    return e.done(absl::InvalidArgumentError("actor call sequence number " +
                                             std::to_string(spec.seq()) +
                                             " was used already"));
  }
  q.early.emplace(spec.seq(), std::move(e));
  for (auto it = q.early.begin(); it != q.early.end() && it->first == q.next;
       it = q.early.erase(it)) {
    exec_queue_.push_back(std::move(it->second));
    ++q.next;
  }
}

void CoreWorker::ExecuteLoop() {
  while (true) {
    Execution e;
    {
      absl::MutexLock lock(&exec_mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(exec_mu_) {
        return exec_stop_ || !exec_queue_.empty();
      };
      exec_mu_.Await(absl::Condition(&ready));
      if (exec_stop_) {
        for (auto& pending : exec_queue_) {
          pending.done(absl::UnavailableError("worker is exiting"));
        }
        exec_queue_.clear();
        for (auto& [caller, q] : callers_) {
          for (auto& [seq, early] : q.early) {
            early.done(absl::UnavailableError("worker is exiting"));
          }
        }
        callers_.clear();
        return;
      }
      e = std::move(exec_queue_.front());
      exec_queue_.pop_front();
    }
    ApplyThreadCap(thread_cap_.load());
    RecordEvent(events_.get(), e.req->spec(), TaskEvents::kExecStart);
    TaskContext ctx;
    ctx.task = *TaskId::FromBinary(e.req->spec().task_id());
    tls_task = &ctx;
    if (options_.task_handler) {
      ExecuteWithHandler(std::make_shared<Execution>(std::move(e)));
    } else {
      Execute(e.req->spec(), e.reply);
      e.run_start_us = ctx.run_start_us;
      e.run_end_us = ctx.run_end_us;
      Finish(e);
    }
    tls_task = nullptr;
  }
}

void CoreWorker::Finish(Execution& e) {
  e.reply->set_pid(getpid());
  if (events_ && events_->enabled()) {
    // What the run took, in one record.
    int64_t now = TaskEvents::Now();
    bool ok = e.reply->ok();
    events_->RecordAt(e.req->spec(),
                      {{TaskEvents::kRunStart, e.run_start_us},
                       {TaskEvents::kRunEnd, e.run_end_us},
                       {TaskEvents::kExecEnd, now},
                       {ok ? TaskEvents::kFinished : TaskEvents::kFailed, now}},
                      ok ? nullptr : &e.reply->error());
  }
  counters_->Count(e.reply->ok() ? counters_->finished : counters_->failed);
  e.done(absl::OkStatus());
}

absl::StatusOr<uint8_t*> CoreWorker::CreateInStore(const ObjectId& id,
                                                   uint64_t data_size,
                                                   uint64_t metadata_size,
                                                   const std::string& owner) {
  // A full store drains as pins go: wait a bounded time unless it can't fit.
  absl::Time deadline = absl::Now() + kStoreFullWait;
  while (true) {
    auto dst = store_->Create(id, data_size, metadata_size, true, owner);
    if (!dst.ok()) ExitIfStoreGone(dst.status());
    if (dst.ok() ||
        dst.status().code() != absl::StatusCode::kResourceExhausted ||
        data_size + metadata_size > store_->arena().size() ||
        absl::Now() > deadline) {
      return dst;  // ResourceExhausted names the sizes
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::Status CoreWorker::WriteToStore(const ObjectId& id, std::string_view data,
                                      const std::string& owner) {
  auto dst = CreateInStore(id, LayoutSize(0, {data.size()}), 0, owner);
  if (!dst.ok()) return dst.status();
  auto at = WriteLayout(*dst, Format::kMsgpack, {}, {data.size()});
  std::memcpy(at[0], data.data(), data.size());
  absl::Status s = store_->Seal(id);
  ExitIfStoreGone(s);
  return s;
}

void CoreWorker::ExitIfStoreGone(const absl::Status& s) const {
  if (options_.is_driver || !absl::IsUnavailable(s)) return;
  spdlog::error("this node's object store is gone ({}): exiting", s.ToString());
  _exit(1);
}

absl::StatusOr<std::string_view> CoreWorker::MsgpackInPlace(
    const ObjectId& id, const ObjectView& view) {
  auto layout = ParseSingleBuffer(view.data, view.data_size, Format::kMsgpack);
  if (!layout.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("object ", id.Hex(),
                     " is not a C++ value: ", layout.status().message()));
  }
  return layout->buffers[0];
}

bool CoreWorker::FetchFromStore(std::vector<ObjectResult>& results,
                                const std::vector<ObjectId>& ids,
                                int64_t timeout_ms) {
  bool lost = false;
  Prefetched pinned(store_);
  PrefetchResults(ids, results, &pinned);
  for (size_t i = 0; i < results.size(); ++i) {
    ObjectResult& r = results[i];
    if (!r.store_node) continue;
    auto view = PinLocal(ids[i], *r.store_node, timeout_ms, &pinned);
    if (view.status().code() == absl::StatusCode::kDataLoss) {
      Recover(ids[i], *r.store_node);
      lost = true;
      continue;
    }
    if (!view.ok()) {
      r.error = MakeError(rpc::ErrorInfo::INVALID,
                          std::string(view.status().message()));
      r.store_node.reset();
      continue;
    }
    // The msgpack path deserializes into the caller's type: one copy here.
    auto bytes = MsgpackInPlace(ids[i], *view);
    if (bytes.ok()) {
      r.value = std::make_shared<const std::string>(*bytes);
    } else {
      r.error = MakeError(rpc::ErrorInfo::INVALID,
                          std::string(bytes.status().message()));
    }
    r.store_node.reset();
    store_->Release(ids[i]).IgnoreError();
  }
  return lost;
}

void CoreWorker::Execute(const rpc::TaskSpec& spec, rpc::PushTaskReply* reply) {
  // Arguments in this node's store are read in place: views, no copies
  // (a Tensor argument keeps its pin while it lives).
  std::vector<std::string_view> args;
  ArgumentPins pins;
  Prefetched pinned(store_);
  PrefetchArgs(spec, &pinned);
  for (const auto& arg : spec.args()) {
    if (arg.has_ref() && !arg.ref().store_node_id().empty()) {
      auto id = ObjectId::FromBinary(arg.ref().object_id());
      auto source = NodeId::FromBinary(arg.ref().store_node_id());
      absl::StatusOr<ObjectView> view =
          absl::InvalidArgumentError("bad argument id");
      if (id.ok() && source.ok()) view = PinLocal(*id, *source, 30000, &pinned);
      absl::StatusOr<std::string_view> bytes =
          view.ok() ? MsgpackInPlace(*id, *view) : view.status();
      if (view.ok()) {
        std::shared_ptr<ObjectStoreClient> store = store_;
        pins.Add(view->data, view->data_size,
                 std::shared_ptr<const void>(view->data,
                                             [store, id = *id](const void*) {
                                               store->Release(id).IgnoreError();
                                             }));
      }
      if (!bytes.ok()) {
        reply->set_ok(false);
        *reply->mutable_error() = ArgumentError(
            id.ok() ? *id : ObjectId(), bytes.status(), spec.function_name());
        return;
      }
      args.push_back(*bytes);
    } else {
      args.push_back(arg.value());
    }
  }
  std::shared_ptr<void> actor;
  std::string actor_class;
  if (!spec.actor_id().empty() && !spec.actor_creation()) {
    absl::MutexLock lock(&exec_mu_);
    actor = actor_;
    actor_class = actor_class_;
  }
  if (!spec.actor_id().empty() && !spec.actor_creation() && !actor) {
    reply->set_ok(false);
    *reply->mutable_error() =
        MakeError(rpc::ErrorInfo::INVALID, "this worker serves no actor",
                  spec.function_name());
  } else {
    if (tls_task) tls_task->run_start_us = TaskEvents::Now();
    ExecuteTask(spec, args, store_ ? UINT64_MAX : kInlineThreshold, reply,
                actor.get(), actor_class);
    if (tls_task) tls_task->run_end_us = TaskEvents::Now();
  }
  if (spec.actor_creation() && reply->ok()) {
    absl::MutexLock lock(&exec_mu_);
    actor_ = internal::TakeCreatedInstance(&actor_class_);
    if (!actor_) {
      reply->set_ok(false);
      *reply->mutable_error() =
          MakeError(rpc::ErrorInfo::INVALID,
                    "the factory made no instance (it must return a new T*)",
                    spec.function_name());
    }
    // max_concurrency > 1: more threads take calls from the same queue,
    // still in the order they were submitted.
    for (int i = 1; i < spec.max_concurrency() && actor_; ++i) {
      exec_pool_.emplace_back([this] { ExecuteLoop(); });
    }
  }
  if (reply->ok() && reply->value().size() > kInlineThreshold && store_) {
    ObjectId ret = ObjectId::ForReturn(*TaskId::FromBinary(spec.task_id()), 1);
    absl::Status s = WriteToStore(ret, reply->value(), HostPort(spec.caller()));
    if (!s.ok()) {
      reply->set_ok(false);
      *reply->mutable_error() =
          MakeError(s.code() == absl::StatusCode::kResourceExhausted
                        ? rpc::ErrorInfo::OBJECT_STORE_FULL
                        : rpc::ErrorInfo::INVALID,
                    std::string(s.message()), spec.function_name());
    } else {
      reply->clear_value();
      reply->set_in_store(true);
      reply->set_node_id(node_id_.Binary());
    }
  }
}

void CoreWorker::WaitForExit() {
  absl::MutexLock lock(&exec_mu_);
  exec_mu_.Await(absl::Condition(&exit_requested_));
}

void CoreWorker::RequestExit() {
  absl::MutexLock lock(&exec_mu_);
  exit_requested_ = true;
}

void CoreWorker::StartSubmitters(
    const std::vector<std::string>& code_search_path) {
  TaskSubmitter::Options tasks{&loop_,
                               &objects_,
                               counters_.get(),
                               options_.raylet_address,
                               job_,
                               options_.worker_id,
                               code_search_path,
                               address_,
                               &clients_,
                               lineage_.get(),
                               [this](const ObjectId& id, const NodeId& node) {
                                 // A copy may live elsewhere (the task pulls it
                                 // on its next run); if not, it is rebuilt as a
                                 // get would.
                                 if (!HasLiveCopy(id)) Recover(id, node);
                               }};
  tasks.events = events_.get();
  submitter_ = std::make_unique<TaskSubmitter>(std::move(tasks));
  submitter_->set_runtime(options_.runtime);
  if (!options_.gcs_address.empty()) {
    actor_submitter_ = std::make_unique<ActorSubmitter>(ActorSubmitter::Options{
        &loop_, &objects_, options_.gcs_address, address_, &clients_,
        lineage_.get(), events_.get()});
  }
}

absl::Status CoreWorker::BuildArgs(std::vector<internal::Arg> args,
                                   rpc::TaskSpec* spec,
                                   std::vector<ObjectId>* deps) {
  for (auto& arg : args) {
    rpc::TaskArg* a = spec->add_args();
    if (arg.is_ref) {
      auto id = ObjectId::FromBinary(arg.data);
      if (!id.ok()) return id.status();
      deps->push_back(*id);
      a->mutable_ref()->set_object_id(std::move(arg.data));
    } else if (arg.data.size() > kInlineThreshold && store_) {
      // Large arguments travel as objects in the store, like a Put.
      auto put = Put(std::move(arg.data));
      if (!put.ok()) return put.status();
      deps->push_back(*put);
      a->mutable_ref()->set_object_id(put->Binary());
    } else if (arg.data.size() > kInlineThreshold) {
      return absl::InvalidArgumentError(absl::StrCat(
          "argument of ", arg.data.size(), " bytes exceeds the inline limit ",
          "of ", kInlineThreshold,
          " bytes, and this process has no object store"));
    } else {
      a->set_value(std::move(arg.data));
    }
  }
  return absl::OkStatus();
}

}  // namespace loom
