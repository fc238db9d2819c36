#include "runtime/actor_submitter.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "runtime/task_args.h"
#include "src/common/async_call.h"
#include "src/common/rpc.h"
#include "src/common/wire.h"

namespace loom {
namespace {

// A cancel the actor does not know yet (it overtook the call's push) is
// sent again this often, this many times, while the call is pending.
constexpr absl::Duration kCancelRetry = absl::Milliseconds(20);
constexpr int kCancelTries = 50;
// How long a call the actor died running waits for the head to say why it
// died (the raylet reports a worker it killed at once; a crash is seen
// when the process ends) before it fails saying only how it broke.
constexpr absl::Duration kDeathCauseWait = absl::Seconds(1);

std::string AddressOf(const rpc::ActorInfo& info) {
  return HostPort(info.address());
}

}  // namespace

struct ActorSubmitter::Call {
  rpc::Context ctx;
  rpc::GetActorRequest get_req;
  rpc::GetActorReply get_reply;
  rpc::PushTaskRequest push_req;
  rpc::PushTaskReply push_reply;
};

ActorSubmitter::ActorSubmitter(Options options)
    : options_(std::move(options)),
      gcs_(rpc::Gcs::NewStub(rpc::MakeChannel(options_.gcs_address))) {}

ActorSubmitter::~ActorSubmitter() { Shutdown(); }

void ActorSubmitter::Shutdown() { calls_.Shutdown(); }

void ActorSubmitter::Submit(const ActorId& actor, rpc::TaskSpec spec) {
  int64_t now = options_.events ? TaskEvents::Now() : 0;
  options_.loop->Post([this, actor, spec = std::move(spec), now]() mutable {
    if (options_.events) {
      options_.events->RecordAt(spec, {{TaskEvents::kSubmitted, now}});
    }
    State& state = actors_[actor];
    uint64_t index = state.next_index++;
    state.calls[index].spec = std::move(spec);
    state.calls[index].retries_left = state.max_task_retries;
    if (state.dead) return FailAll(state, state.death);
    WhenArgsReady(
        options_.objects, options_.loop, state.calls[index].spec,
        [this, actor, index] {
          State& state = actors_[actor];
          auto it = state.calls.find(index);
          if (it == state.calls.end()) return;
          if (auto error = InlineArgs(options_.objects, &it->second.spec)) {
            // Runs as a call that fails: later calls keep order.
            FailCall(it->second.spec, *error);
            state.calls.erase(it);
            CheckIdle(state);
          } else {
            it->second.ready = true;
            RecordEvent(options_.events, it->second.spec,
                        TaskEvents::kArgsReady);
          }
          Pump(actor);
        });
  });
}

bool ActorSubmitter::Admit(const ActorId& actor) {
  absl::MutexLock lock(&pending_mu_);
  Pending_& p = pending_[actor];
  if (p.limit > 0 && p.count >= p.limit) return false;
  ++p.count;
  return true;
}

void ActorSubmitter::SetLimit(const ActorId& actor, int max_pending_calls) {
  absl::MutexLock lock(&pending_mu_);
  pending_[actor].limit = max_pending_calls;
}

void ActorSubmitter::Done(const ActorId& actor) {
  absl::MutexLock lock(&pending_mu_);
  --pending_[actor].count;
}

void ActorSubmitter::MarkDead(const ActorId& actor, const std::string& cause) {
  options_.loop->RunSync([&] {
    State& state = actors_[actor];
    state.dead = true;
    state.death = MakeError(rpc::ErrorInfo::ACTOR_DIED, cause);
    FailAll(state, state.death);
  });
}

void ActorSubmitter::Pump(const ActorId& id) {
  State& state = actors_[id];
  if (state.dead) return FailAll(state, state.death);
  if (state.address.empty()) return Resolve(id);
  if (!state.stub) {
    state.stub = options_.clients->Stub<rpc::CoreWorker>(state.address);
  }
  // Numbers go in submission order; a call whose arguments are not ready
  // yet holds the ones after it back at the actor, not here. The scan
  // starts past the prefix already numbered and sent.
  bool prefix = true;
  for (auto it = state.calls.lower_bound(state.scan_from);
       it != state.calls.end(); ++it) {
    uint64_t index = it->first;
    Pending& p = it->second;
    if (p.seq < 0) {
      p.seq = state.next_seq++;
      p.spec.set_seq(p.seq);
    }
    if (!p.ready) prefix = false;
    if (prefix) state.scan_from = index + 1;
    if (!p.ready || p.sent) continue;
    p.sent = true;
    RecordEvent(options_.events, p.spec, TaskEvents::kPushed);
    auto* call = new Call;
    *call->push_req.mutable_spec() = p.spec;
    if (!calls_.Start(&call->ctx)) {
      delete call;
      return;
    }
    std::string address = state.address;
    bool cancel = p.cancelled;
    state.pushes.insert(&call->ctx);
    rpc::AsyncCall(
        *state.stub, &rpc::CoreWorker::Stub::PrepareAsyncPushTask, &call->ctx,
        call->push_req, &call->push_reply,
        [this, id, index = index, address, call](grpc::Status s) {
          // The value lands now, on gRPC's thread, so that a caller blocked
          // in Get wakes without waiting for the loop.
          if (s.ok()) {
            const rpc::TaskSpec& spec = call->push_req.spec();
            if (options_.lineage && ReturnsInStore(call->push_reply)) {
              options_.lineage->Unrecoverable(
                  *TaskId::FromBinary(spec.task_id()), spec.num_returns(),
                  "it is an actor task's result, and actor tasks are not "
                  "re-run to rebuild their results");
            }
            ApplyReply(options_.objects, options_.self_address,
                       call->push_req.spec(), call->push_reply);
          }
          options_.loop->Post([this, id, index, address, call, s] {
            actors_[id].pushes.erase(&call->ctx);
            OnReply(id, index, address, call, s);
            calls_.Finish(&call->ctx);
            delete call;
          });
        });
    if (cancel) SendCancel(id, state, p.spec.task_id(), p.keep_children);
  }
}

absl::StatusOr<bool> ActorSubmitter::Cancel(const TaskId& task, bool force,
                                            bool keep_children) {
  bool found = false;
  options_.loop->RunSync([&] {
    const std::string id = task.Binary();
    for (auto& [actor, state] : actors_) {
      for (auto it = state.calls.begin(); it != state.calls.end(); ++it) {
        Pending& p = it->second;
        if (p.spec.task_id() != id) continue;
        found = true;
        p.keep_children = keep_children;
        if (force) {
          return;
        } else if (p.seq <
                   0) {  // no number yet: later calls do not wait for it
          FailCall(p.spec, MakeError(rpc::ErrorInfo::TASK_CANCELLED,
                                     "the call was cancelled before it ran"));
          state.calls.erase(it);
          CheckIdle(state);
        } else if (p.sent) {
          SendCancel(actor, state, id, keep_children);
        } else {
          p.cancelled = true;  // numbered: sent (and interrupted) in turn
        }
        return;
      }
    }
  });
  if (found && force) {
    return absl::InvalidArgumentError(
        "force=True cannot cancel an actor call (it would kill the actor's "
        "process): cancel without force, or kill the actor");
  }
  return found;
}

void ActorSubmitter::SendCancel(const ActorId& id, State& state,
                                const std::string& task_id, bool keep_children,
                                int tries) {
  if (!state.stub) return;  // the actor is restarting: the call is resent
  struct CancelCall {
    rpc::Context ctx;
    rpc::CancelTaskRequest req;
    rpc::CancelTaskReply reply;
  };
  auto* call = new CancelCall;
  call->req.set_task_id(task_id);
  call->req.set_keep_children(keep_children);
  rpc::SetTimeout(&call->ctx, 5000);
  if (!calls_.Start(&call->ctx)) {
    delete call;
    return;
  }
  rpc::AsyncCall(*state.stub, &rpc::CoreWorker::Stub::PrepareAsyncCancelTask,
                 &call->ctx, call->req, &call->reply,
                 [this, call, id, task_id, tries](grpc::Status s) {
                   bool unknown = s.ok() && !call->reply.found();
                   calls_.Finish(&call->ctx);
                   delete call;
                   if (!unknown || tries >= kCancelTries) return;
                   options_.loop->PostAfter(
                       kCancelRetry, [this, id, task_id, tries] {
                         auto it = actors_.find(id);
                         if (it == actors_.end()) return;
                         for (const auto& [index, p] : it->second.calls) {
                           if (p.spec.task_id() == task_id && p.sent) {
                             return SendCancel(id, it->second, task_id,
                                               p.keep_children, tries + 1);
                           }
                         }
                       });
                 });
}

void ActorSubmitter::OnReply(const ActorId& id, uint64_t index,
                             const std::string& address, Call* call,
                             const grpc::Status& s) {
  State& state = actors_[id];
  auto it = state.calls.find(index);
  if (it == state.calls.end()) return;
  if (s.ok()) {  // the reply is applied already
    if (call->push_reply.ok()) {
      RecordEvent(options_.events, it->second.spec, TaskEvents::kFinished);
    } else {
      RecordEvent(options_.events, it->second.spec, TaskEvents::kFailed,
                  &call->push_reply.error());
    }
    ReleaseArgs(options_.objects, it->second.spec);
    state.calls.erase(it);
    Done(id);
    CheckIdle(state);
    return;
  }
  if (address != state.address) return;  // already handled for this one
  Failover(id, s.error_message());
}

void ActorSubmitter::Failover(const ActorId& id, const std::string& why) {
  State& state = actors_[id];
  // The actor's process is gone (or unreachable): every call sent to it is
  // sent again to the next incarnation while its retries last.
  spdlog::info("actor {} at {} failed: {}", id.Hex(), state.address, why);
  state.failed = state.address;
  options_.clients->Drop(state.address);
  state.address.clear();
  state.stub.reset();
  state.next_seq = 0;  // the next incarnation counts from 0
  state.scan_from = 0;
  for (auto c = state.calls.begin(); c != state.calls.end();) {
    Pending& p = c->second;
    ObjectId ret =
        ObjectId::ForReturn(*TaskId::FromBinary(p.spec.task_id()), 1);
    if (p.sent && options_.objects->TryGet(ret)) {
      ++c;  // answered already; its reply is on the way to OnReply
      continue;
    }
    if (p.sent && p.retries_left-- <= 0) {
      state.lost.push_back(
          {std::move(p.spec), why, absl::Now() + kDeathCauseWait});
      c = state.calls.erase(c);
      continue;
    }
    p.sent = false;
    p.seq = -1;
    ++c;
  }
  if (!state.lost.empty()) {
    options_.loop->PostAfter(kDeathCauseWait, [this, id] {
      if (auto it = actors_.find(id); it != actors_.end()) {
        FailLost(it->second, "", /*all=*/false);
      }
    });
  }
  CheckIdle(state);
  Resolve(id);
}

void ActorSubmitter::FailLost(State& state, const std::string& death_cause,
                              bool all) {
  absl::Time now = absl::Now();
  auto kept = state.lost.begin();
  for (auto& l : state.lost) {
    if (!all && l.until > now) {
      if (&*kept != &l) *kept = std::move(l);
      ++kept;
      continue;
    }
    std::string fn = l.spec.function_name();
    FailCall(l.spec,
             MakeError(rpc::ErrorInfo::ACTOR_DIED,
                       death_cause.empty()
                           ? absl::StrCat("the actor died while running ", fn,
                                          " (", l.why, ")")
                           : absl::StrCat("the actor died while running ", fn,
                                          ": ", death_cause)));
  }
  state.lost.erase(kept, state.lost.end());
}

void ActorSubmitter::Resolve(const ActorId& id) {
  State& state = actors_[id];
  if (state.resolving) return;
  state.resolving = true;
  auto* call = new Call;
  call->get_req.set_actor_id(id.Binary());
  call->get_req.set_wait_ready(true);
  if (!calls_.Start(&call->ctx)) {
    delete call;
    return;
  }
  rpc::AsyncCall(
      *gcs_, &rpc::Gcs::Stub::PrepareAsyncGetActor, &call->ctx, call->get_req,
      &call->get_reply, [this, id, call](grpc::Status s) {
        options_.loop->Post([this, id, call, s] {
          State& state = actors_[id];
          state.resolving = false;
          const rpc::ActorInfo& info = call->get_reply.actor();
          absl::Time now = absl::Now();
          if (rpc::HeadUnreachable(s)) {
            state.head_lost = std::min(state.head_lost, now);
          }
          if (!s.ok() && s.error_code() == grpc::StatusCode::CANCELLED) {
            // shutting down
          } else if (rpc::HeadUnreachable(s) &&
                     now - state.head_lost < rpc::HeadWait()) {
            // The head is down or restarting: its calls wait for it.
            options_.loop->PostAfter(rpc::HeadBackoff(state.head_tries++),
                                     [this, id] { Resolve(id); });
          } else if (!s.ok() || info.state() == rpc::ActorInfo::DEAD) {
            state.dead = true;
            std::string why = rpc::HeadUnreachable(s)
                                  ? rpc::HeadGone(s).error_message()
                                  : s.error_message();
            state.death = MakeError(
                rpc::ErrorInfo::ACTOR_DIED,
                s.ok() ? "the actor is dead: " + info.death_cause()
                       : "cannot reach the head to find the actor: " + why);
            FailLost(state, s.ok() ? info.death_cause() : "", /*all=*/true);
            FailAll(state, state.death);
          } else if (AddressOf(info) == state.failed) {
            // The head has not seen the death yet: ask again shortly.
            options_.loop->PostAfter(absl::Milliseconds(50),
                                     [this, id] { Resolve(id); });
          } else {
            // It was restarted: what it was running says why it died.
            FailLost(state,
                     info.num_restarts() > state.restarts &&
                             !info.restart_cause().empty()
                         ? info.restart_cause() + "; it was restarted"
                         : "",
                     /*all=*/true);
            state.failed.clear();
            state.head_tries = 0;
            state.head_lost = absl::InfiniteFuture();
            if (state.restarts < 0) {  // first contact: the retry budget
              state.max_task_retries = info.max_task_retries() < 0
                                           ? 1 << 30
                                           : info.max_task_retries();
              for (auto& [index, p] : state.calls) {
                p.retries_left = state.max_task_retries;
              }
            }
            state.restarts = info.num_restarts();
            SetLimit(id, info.max_pending_calls());
            state.address = AddressOf(info);
            state.node_id = info.node_id();
            Pump(id);
          }
          calls_.Finish(&call->ctx);
          delete call;
        });
      });
}

void ActorSubmitter::OnNodeDead(const std::string& node_id) {
  for (auto& [id, state] : actors_) {
    if (state.node_id != node_id || state.address.empty()) continue;
    // Calls sent there are resent to the next incarnation, and later ones
    // wait for it; the cancelled calls' replies find the address changed.
    for (grpc::ClientContext* ctx : state.pushes) ctx->TryCancel();
    Failover(id, "its node died");
  }
}

void ActorSubmitter::FailAll(State& state, const rpc::ErrorInfo& error) {
  for (auto& [index, p] : state.calls) FailCall(p.spec, error);
  state.calls.clear();
  CheckIdle(state);
}

void ActorSubmitter::WhenIdle(const ActorId& actor, std::function<void()> fn) {
  options_.loop->Post([this, actor, fn = std::move(fn)]() mutable {
    auto it = actors_.find(actor);
    if (it == actors_.end() || it->second.calls.empty()) return fn();
    it->second.when_idle.push_back(std::move(fn));
  });
}

void ActorSubmitter::CheckIdle(State& state) {
  if (!state.calls.empty() || state.when_idle.empty()) return;
  // Posted: a callback may call back in (MarkDead runs on the loop).
  for (auto& fn : state.when_idle) options_.loop->Post(std::move(fn));
  state.when_idle.clear();
}

void ActorSubmitter::FailCall(const rpc::TaskSpec& spec, rpc::ErrorInfo error) {
  error.set_task_name(spec.function_name());
  RecordEvent(options_.events, spec, TaskEvents::kFailed, &error);
  SetReturnsError(options_.objects, spec, error);
  ReleaseArgs(options_.objects, spec);
  Done(*ActorId::FromBinary(spec.actor_id()));
}

}  // namespace loom
