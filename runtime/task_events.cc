#include "runtime/task_events.h"

#include <cstdlib>
#include <cstring>

#include "proto/gcs.grpc.pb.h"
#include "proto/raylet.grpc.pb.h"
#include "src/common/async_call.h"
#include "src/common/rpc.h"

namespace loom {
namespace {

bool EventsWanted(const std::string& head) {
  const char* env = std::getenv("LOOM_TASK_EVENTS");
  return !head.empty() && !(env && std::strcmp(env, "0") == 0);
}

rpc::TaskEvent::Type TypeOf(const rpc::TaskSpec& spec) {
  if (spec.actor_creation()) return rpc::TaskEvent::ACTOR_CREATION_TASK;
  if (!spec.actor_id().empty()) return rpc::TaskEvent::ACTOR_TASK;
  return rpc::TaskEvent::NORMAL_TASK;
}

void SetTime(rpc::TaskEvent& e, int kind, int64_t at) {
  if (at == 0) return;
  switch (kind) {
    case TaskEvents::kSubmitted:
      return e.set_submitted_us(at);
    case TaskEvents::kArgsReady:
      return e.set_args_ready_us(at);
    case TaskEvents::kPushed:
      return e.set_pushed_us(at);
    case TaskEvents::kExecStart:
      return e.set_exec_start_us(at);
    case TaskEvents::kRunStart:
      return e.set_run_start_us(at);
    case TaskEvents::kRunEnd:
      return e.set_run_end_us(at);
    case TaskEvents::kExecEnd:
      return e.set_exec_end_us(at);
    case TaskEvents::kFinished:
      return e.set_finished_us(at);
    case TaskEvents::kFailed:
      return e.set_failed_us(at);
  }
}

}  // namespace

TaskEvents::TaskEvents(Options options)
    : options_(std::move(options)), enabled_(EventsWanted(options_.head)) {}

TaskEvents::~TaskEvents() { Shutdown(absl::ZeroDuration()); }

int64_t TaskEvents::Now() { return absl::ToUnixMicros(absl::Now()); }

TaskEvents::Pending* TaskEvents::EntryFor(const rpc::TaskSpec& spec,
                                          const TaskId& id) {
  auto [it, added] = buffered_.try_emplace(Key(id, spec.attempt()));
  Pending& p = it->second;
  if (!added) return &p;
  if (buffered_.size() > options_.max_buffered) {
    buffered_.erase(it);
    dropped_++;
    return nullptr;
  }
  p.type = TypeOf(spec);
  auto [name, named] =
      name_index_.try_emplace(spec.function_name(), names_.size());
  if (named) names_.push_back(spec.function_name());
  p.name = name->second;
  if (auto job = JobId::FromBinary(spec.job_id()); job.ok()) p.job = *job;
  if (auto actor = ActorId::FromBinary(spec.actor_id()); actor.ok()) {
    p.actor = *actor;
  }
  return &p;
}

void TaskEvents::Record(const rpc::TaskSpec& spec, Kind kind,
                        const rpc::ErrorInfo* error, bool retried) {
  if (enabled_) RecordAt(spec, {{kind, Now()}}, error, retried);
}

void TaskEvents::RecordAt(const rpc::TaskSpec& spec,
                          std::initializer_list<std::pair<Kind, int64_t>> times,
                          const rpc::ErrorInfo* error, bool retried) {
  if (!enabled_) return;
  auto id = TaskId::FromBinary(spec.task_id());
  if (!id.ok()) return;
  bool post = false;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    Pending* p = EntryFor(spec, *id);
    if (p == nullptr) return;
    for (const auto& [kind, at] : times) {
      if (at != 0) p->times[kind] = at;
      p->executed |= kind >= kExecStart && kind <= kExecEnd;
    }
    if (error) {
      p->error = errors_.size();
      errors_.emplace_back(error->kind(),
                           error->type().empty()
                               ? error->message()
                               : error->type() + ": " + error->message());
    }
    p->retried |= retried;
    post = !armed_;
    armed_ = true;
  }
  if (post) options_.loop->PostAfter(options_.interval, [this] { Send(); });
}

void TaskEvents::Drain(rpc::ReportTaskEventsRequest* req) {
  req->mutable_events()->Reserve(buffered_.size());
  std::string node = options_.node.Binary();
  std::string worker = options_.worker.Binary();
  for (const auto& [key, p] : buffered_) {
    rpc::TaskEvent* e = req->add_events();
    e->set_task_id(key.first.Binary());
    e->set_attempt(key.second);
    e->set_name(names_[p.name]);
    e->set_job_id(p.job.Binary());
    if (!p.actor.IsNil()) e->set_actor_id(p.actor.Binary());
    e->set_type(static_cast<rpc::TaskEvent::Type>(p.type));
    for (int k = 0; k <= kFailed; ++k) SetTime(*e, k, p.times[k]);
    if (p.executed) {
      e->set_node_id(node);
      e->set_worker_id(worker);
      e->set_pid(options_.pid);
    }
    if (p.error >= 0) {
      e->set_error_kind(
          static_cast<rpc::ErrorInfo::Kind>(errors_[p.error].first));
      e->set_error_message(errors_[p.error].second);
    }
    e->set_retried(p.retried);
  }
  buffered_.clear();
  errors_.clear();
  req->set_dropped(dropped_);
  dropped_ = 0;
}

template <typename Use>
void TaskEvents::WithStub(Use use) {
  // The same ReportTaskEvents at both: the raylet passes it to the head.
  if (options_.relay.empty()) {
    use(*options_.clients->Stub<rpc::Gcs>(options_.head));
  } else {
    use(*options_.clients->Stub<rpc::Raylet>(options_.relay));
  }
}

void TaskEvents::Send() {
  struct Call {
    rpc::Context ctx;
    rpc::ReportTaskEventsRequest req;
    rpc::ReportTaskEventsReply reply;
  };
  auto* call = new Call;
  {
    absl::MutexLock lock(&mu_);
    armed_ = false;
    if (shut_down_) return delete call;
    if (sending_) {
      // The last report is still in flight: this one waits its turn.
      armed_ = true;
      options_.loop->PostAfter(options_.interval, [this] { Send(); });
      return delete call;
    }
    if (buffered_.empty() && dropped_ == 0) return delete call;
    Drain(&call->req);
    sending_ = true;
  }
  rpc::SetTimeout(&call->ctx, 10000);
  if (!calls_.Start(&call->ctx)) return delete call;  // shutting down
  auto sent = [this, call](grpc::Status s) {
    {
      absl::MutexLock lock(&mu_);
      sending_ = false;
      // Lost with the head: say so next time.
      if (!s.ok()) dropped_ += call->req.events_size();
    }
    calls_.Finish(&call->ctx);
    delete call;
  };
  WithStub([&](auto& stub) {
    rpc::AsyncCall(stub,
                   &std::decay_t<decltype(stub)>::PrepareAsyncReportTaskEvents,
                   &call->ctx, call->req, &call->reply, sent);
  });
}

void TaskEvents::Shutdown(absl::Duration timeout) {
  rpc::ReportTaskEventsRequest req;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    Drain(&req);
  }
  calls_.Shutdown(timeout);
  if (!enabled_ || timeout <= absl::ZeroDuration() ||
      (req.events_size() == 0 && req.dropped() == 0)) {
    return;
  }
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, absl::ToInt64Milliseconds(timeout));
  rpc::ReportTaskEventsReply reply;
  WithStub([&](auto& stub) { stub.ReportTaskEvents(&ctx, req, &reply).ok(); });
}

}  // namespace loom
