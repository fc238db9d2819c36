// The caller's side of actors: creation through the head, calls through the
// ActorSubmitter, lookup by name, kill.
#include <cxxabi.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "runtime/actor_submitter.h"
#include "runtime/core_worker.h"
#include "runtime/raylet_client.h"
#include "runtime/task_args.h"
#include "src/common/wire.h"

namespace loom {
namespace {

std::string Demangle(const std::string& name) {
  int status = 0;
  char* out = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status);
  std::string result = (status == 0 && out) ? out : name;
  std::free(out);
  return result;
}

}  // namespace

namespace {

CoreWorker::ActorRef RefOf(const rpc::ActorInfo& info, const ActorId& id,
                           const std::string& self) {
  CoreWorker::ActorRef out{id, std::nullopt, ""};
  if (auto h = ObjectId::FromBinary(info.handle_object()); h.ok()) {
    out.handle = *h;
    out.owner = info.owner() == self ? "" : info.owner();
  }
  return out;
}

}  // namespace

absl::StatusOr<CoreWorker::ActorRef> CoreWorker::CreateActor(
    const std::string& factory, const std::string& class_name,
    std::vector<internal::Arg> args, const internal::ActorOptions& options,
    const std::vector<ObjectId>& contained) {
  if (shut_down_) return absl::FailedPreconditionError("Loom is shut down");
  if (submitter_ == nullptr) {
    return absl::FailedPreconditionError("this worker has no job yet");
  }
  if (options.max_restarts < -1 || options.max_task_retries < -1) {
    return absl::InvalidArgumentError(
        "max_restarts and max_task_retries must be >= -1");
  }
  if (options.max_concurrency < 1 || options.max_concurrency > 1000 ||
      options.max_pending_calls < 0) {
    return absl::InvalidArgumentError(
        "max_concurrency must be in [1, 1000] and max_pending_calls >= 0");
  }
  auto demand = ResourceSet::FromMap(options.resources);
  if (!demand.ok()) return demand.status();
  rpc::RegisterActorRequest req;
  rpc::TaskSpec* spec = req.mutable_creation();
  ActorId actor = ActorId::FromRandom();
  spec->set_task_id(NextTaskId().Binary());
  spec->set_job_id(job_.Binary());
  spec->set_function_name(factory);
  spec->set_actor_id(actor.Binary());
  spec->set_actor_creation(true);
  spec->set_max_concurrency(options.max_concurrency);
  spec->set_msgpack_values(options.msgpack_values);
  auto strategy = StrategyToProto(options.strategy);
  if (!strategy.ok()) return strategy.status();
  *spec->mutable_strategy() = *strategy;
  *spec->mutable_resources() = ResourcesToProto(*demand);
  std::vector<ObjectId> deps;
  if (absl::Status s = BuildArgs(std::move(args), spec, &deps); !s.ok()) {
    return s;
  }
  // The head pushes the creation itself (again on each restart): its ref
  // arguments are resolved here, now, and those in a store are held, with
  // the refs inside the arguments, until the actor dies for good
  // (ReleaseCreationRefs).
  FollowHeadEvents();  // before the actor exists: its death is not missed
  for (const ObjectId& dep : deps) objects_.AddRef(dep);
  auto ready = objects_.Get(deps, absl::InfiniteFuture());
  (void)ready;
  std::vector<ObjectId> held;
  absl::Status resolved;
  for (auto& arg : *spec->mutable_args()) {
    if (!arg.has_ref()) continue;
    auto id = *ObjectId::FromBinary(arg.ref().object_id());
    auto r = objects_.TryGet(id);
    if (resolved.ok() && (!r || r->error)) {
      resolved = absl::FailedPreconditionError(
          absl::StrCat("an argument of the actor's factory failed: ",
                       r && r->error ? r->error->message() : "lost"));
    }
    if (resolved.ok() && r->store_node) {
      arg.mutable_ref()->set_store_node_id(r->store_node->Binary());
      held.push_back(id);
      continue;
    }
    if (resolved.ok()) arg.set_value(*r->value);
    objects_.RemoveRef(id);  // inlined in the spec, or failed
  }
  if (!resolved.ok()) {
    for (const ObjectId& id : held) objects_.RemoveRef(id);
    return resolved;
  }
  for (const ObjectId& inner : contained) spec->add_contained(inner.Binary());
  req.set_class_name(Demangle(class_name));
  req.set_name(options.name);
  req.set_ns(options.ns);
  req.set_max_restarts(options.max_restarts);
  req.set_max_task_retries(options.max_task_retries);
  req.set_max_pending_calls(options.max_pending_calls);
  req.set_detached(options.detached);
  req.set_get_if_exists(options.get_if_exists);
  for (const auto& p : options_.code_search_path) req.add_code_search_path(p);
  *req.mutable_runtime() =
      options.env.set ? RuntimeFor(options.env) : options_.runtime;
  if (req.runtime().language() == rpc::WorkerRuntime::PYTHON &&
      req.runtime().python_executable().empty()) {
    for (const ObjectId& id : held) objects_.RemoveRef(id);
    return absl::FailedPreconditionError(
        "no Python interpreter for Python actors: set "
        "InitOptions::python_executable or $LOOM_PYTHON");
  }
  req.set_exact_placement(options.resources.count(kCpu) > 0);
  std::optional<ObjectId> handle;
  if (!options.detached) {
    // Its references are the actor's handles; freed, it stops the actor.
    handle = NextPutId();
    objects_.AddPending(*handle);
    objects_.SetValue(*handle, actor.Binary());
    req.set_handle_object(handle->Binary());
    req.set_owner(address_);
  }
  if (events_) {
    int64_t now = TaskEvents::Now();  // its arguments are resolved above
    events_->RecordAt(
        *spec, {{TaskEvents::kSubmitted, now}, {TaskEvents::kArgsReady, now}});
  }
  auto info = raylet_->RegisterActor(req);
  auto drop = [&] {  // the handle object is not needed: free it
    for (const ObjectId& id : held) objects_.RemoveRef(id);
    if (!handle) return;
    objects_.AddRef(*handle);
    objects_.RemoveRef(*handle);
  };
  if (!info.ok()) {
    drop();
    return info.status();
  }
  auto id = ParseId<ActorId>(info->actor_id(), "actor_id");
  if (!id.ok()) {
    drop();
    return id.status();
  }
  if (actor_submitter_) {
    actor_submitter_->SetLimit(*id, info->max_pending_calls());
  }
  if (*id != actor) {  // get-if-exists found another: hold that one's
    drop();
    for (const ObjectId& inner : contained) objects_.RemoveRef(inner);
    return RefOf(*info, *id, address_);
  }
  held.insert(held.end(), contained.begin(), contained.end());
  if (!held.empty()) {
    absl::MutexLock lock(&handles_mu_);
    creation_refs_[*id] = std::move(held);
  }
  if (handle) {
    absl::MutexLock lock(&handles_mu_);
    handles_[*handle] = *id;
  }
  return ActorRef{*id, handle, ""};
}

absl::StatusOr<std::vector<ObjectId>> CoreWorker::SubmitActorTask(
    const ActorId& actor, const std::string& method,
    std::vector<internal::Arg> args, const std::vector<ObjectId>& contained,
    int num_returns, int64_t stream_window, bool msgpack_values) {
  if (shut_down_) return absl::FailedPreconditionError("Loom is shut down");
  if (actor_submitter_ == nullptr) {
    return absl::FailedPreconditionError(
        "actor calls need the head's address (this process has none)");
  }
  TaskId task = NextTaskId();
  rpc::TaskSpec spec;
  spec.set_task_id(task.Binary());
  spec.set_job_id(job_.Binary());
  spec.set_function_name(method);
  spec.set_actor_id(actor.Binary());
  spec.set_caller_id(options_.worker_id.Binary());
  spec.mutable_caller()->set_host(options_.host);
  spec.mutable_caller()->set_port(port_);
  if (num_returns < 1 || num_returns > 1000) {
    return absl::InvalidArgumentError("num_returns must be in [1, 1000]");
  }
  if (num_returns > 1) spec.set_num_returns(num_returns);
  if (stream_window < -2) {
    return absl::InvalidArgumentError("stream_window must be >= -2");
  }
  spec.set_stream_window(stream_window);
  spec.set_msgpack_values(msgpack_values);
  if (!actor_submitter_->Admit(actor)) {
    // kAborted marks backpressure (a full store is kResourceExhausted).
    return absl::AbortedError(
        absl::StrCat("actor ", actor.Hex(),
                     " has max_pending_calls calls from this "
                     "caller not yet answered"));
  }
  std::vector<ObjectId> deps;
  if (absl::Status s = BuildArgs(std::move(args), &spec, &deps); !s.ok()) {
    actor_submitter_->Done(actor);  // not submitted after all
    return s;
  }
  std::vector<ObjectId> rets = ReturnIds(spec);
  for (const ObjectId& ret : rets) objects_.AddPending(ret);
  if (stream_window != 0) OpenStream(task, stream_window, rets[0]);
  for (const ObjectId& dep : deps) objects_.AddRef(dep);
  for (const ObjectId& inner : contained) spec.add_contained(inner.Binary());
  FollowHeadEvents();
  actor_submitter_->Submit(actor, std::move(spec));
  return rets;
}

absl::StatusOr<CoreWorker::ActorRef> CoreWorker::GetNamedActor(
    const std::string& name, const std::string& ns) {
  rpc::GetActorRequest req;
  req.set_name(name);
  req.set_ns(ns);
  auto info = raylet_->GetActor(req);
  if (!info.ok()) return info.status();
  if (info->state() == rpc::ActorInfo::DEAD) {
    return absl::NotFoundError(absl::StrCat(
        "the actor named '", name, "' is dead: ", info->death_cause()));
  }
  auto id = ParseId<ActorId>(info->actor_id(), "actor_id");
  if (!id.ok()) return id.status();
  return RefOf(*info, *id, address_);
}

absl::Status CoreWorker::KillActor(const ActorId& actor, bool no_restart,
                                   const std::string& reason) {
  rpc::KillActorRequest req;
  req.set_actor_id(actor.Binary());
  req.set_no_restart(no_restart);
  req.set_reason(reason);
  absl::Status s = raylet_->KillActor(req);
  if (s.ok() && no_restart && actor_submitter_) {
    actor_submitter_->MarkDead(
        actor, reason.empty() ? "the actor was killed by loom::Kill" : reason);
  }
  if (s.ok() && no_restart) ReleaseCreationRefs(actor);
  return s;
}

void CoreWorker::ReleaseCreationRefs(const ActorId& actor) {
  std::vector<ObjectId> held;
  {
    absl::MutexLock lock(&handles_mu_);
    auto it = creation_refs_.find(actor);
    if (it == creation_refs_.end()) return;
    held = std::move(it->second);
    creation_refs_.erase(it);
  }
  for (const ObjectId& id : held) objects_.RemoveRef(id);
}

}  // namespace loom
