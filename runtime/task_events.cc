#include "runtime/task_events.h"

#include <cstdlib>
#include <cstring>

#include "proto/gcs.grpc.pb.h"
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

void SetTime(rpc::TaskEvent& e, TaskEvents::Kind kind, int64_t now) {
  switch (kind) {
    case TaskEvents::kSubmitted:
      return e.set_submitted_us(now);
    case TaskEvents::kArgsReady:
      return e.set_args_ready_us(now);
    case TaskEvents::kPushed:
      return e.set_pushed_us(now);
    case TaskEvents::kExecStart:
      return e.set_exec_start_us(now);
    case TaskEvents::kRunStart:
      return e.set_run_start_us(now);
    case TaskEvents::kRunEnd:
      return e.set_run_end_us(now);
    case TaskEvents::kExecEnd:
      return e.set_exec_end_us(now);
    case TaskEvents::kFinished:
      return e.set_finished_us(now);
    case TaskEvents::kFailed:
      return e.set_failed_us(now);
  }
}

}  // namespace

TaskEvents::TaskEvents(Options options)
    : options_(std::move(options)), enabled_(EventsWanted(options_.head)) {}

TaskEvents::~TaskEvents() { Shutdown(absl::ZeroDuration()); }

void TaskEvents::Record(const rpc::TaskSpec& spec, Kind kind,
                        const rpc::ErrorInfo* error, bool retried) {
  if (!enabled_) return;
  auto id = TaskId::FromBinary(spec.task_id());
  if (!id.ok()) return;
  int64_t now = absl::ToUnixMicros(absl::Now());
  bool arm = false;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    auto it = buffered_.find(std::make_pair(*id, spec.attempt()));
    if (it == buffered_.end()) {
      if (buffered_.size() >= options_.max_buffered) {
        dropped_++;
        return;
      }
      it = buffered_.try_emplace(std::make_pair(*id, spec.attempt())).first;
      rpc::TaskEvent& e = it->second;
      e.set_task_id(spec.task_id());
      e.set_attempt(spec.attempt());
      e.set_name(spec.function_name());
      e.set_job_id(spec.job_id());
      e.set_actor_id(spec.actor_id());
      e.set_type(TypeOf(spec));
    }
    rpc::TaskEvent& e = it->second;
    SetTime(e, kind, now);
    if (kind >= kExecStart && kind <= kExecEnd && e.worker_id().empty()) {
      e.set_node_id(options_.node.Binary());
      e.set_worker_id(options_.worker.Binary());
      e.set_pid(options_.pid);
    }
    if (error) {
      e.set_error_kind(error->kind());
      e.set_error_message(error->type().empty()
                              ? error->message()
                              : error->type() + ": " + error->message());
    }
    if (retried) e.set_retried(true);
    arm = !armed_;
    armed_ = true;
  }
  if (arm) options_.loop->PostAfter(options_.interval, [this] { Send(); });
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
    call->req.mutable_events()->Reserve(buffered_.size());
    for (auto& [key, e] : buffered_) {
      *call->req.add_events() = std::move(e);
    }
    buffered_.clear();
    call->req.set_dropped(dropped_);
    dropped_ = 0;
    sending_ = true;
  }
  rpc::SetTimeout(&call->ctx, 10000);
  if (!calls_.Start(&call->ctx)) return delete call;  // shutting down
  options_.clients->Stub<rpc::Gcs>(options_.head)
      ->async()
      ->ReportTaskEvents(&call->ctx, &call->req, &call->reply,
                         [this, call](grpc::Status s) {
                           {
                             absl::MutexLock lock(&mu_);
                             sending_ = false;
                             // Lost with the head: say so next time.
                             if (!s.ok()) dropped_ += call->req.events_size();
                           }
                           calls_.Finish(&call->ctx);
                           delete call;
                         });
}

void TaskEvents::Shutdown(absl::Duration timeout) {
  rpc::ReportTaskEventsRequest req;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    for (auto& [key, e] : buffered_) *req.add_events() = std::move(e);
    buffered_.clear();
    req.set_dropped(dropped_);
  }
  calls_.Shutdown(timeout);
  if (!enabled_ || timeout <= absl::ZeroDuration() ||
      (req.events_size() == 0 && req.dropped() == 0)) {
    return;
  }
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, absl::ToInt64Milliseconds(timeout));
  rpc::ReportTaskEventsReply reply;
  options_.clients->Stub<rpc::Gcs>(options_.head)
      ->ReportTaskEvents(&ctx, req, &reply)
      .ok();
}

}  // namespace loom
