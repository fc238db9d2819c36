// What a language runtime (the Python client) uses of the core worker:
// objects in the common layout (pickle5), tasks run by its task handler,
// cancelling them, placement-group readiness as an object; and raw objects
// (bytes plus metadata: Buffer, Tensor), which C++ and Python share.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "object_store/layout.h"
#include "object_store/store_client.h"
#include "runtime/actor_submitter.h"
#include "runtime/core_worker.h"
#include "runtime/owner_client.h"
#include "runtime/raylet_client.h"
#include "runtime/task_args.h"
#include "runtime/task_submitter.h"
#include "runtime/worker_checks.h"
#include "src/common/auth.h"
#include "src/common/wire.h"

namespace loom {

std::pair<uintptr_t, uint64_t> CoreWorker::StoreMapping() const {
  if (!store_) return {0, 0};
  return {reinterpret_cast<uintptr_t>(store_->arena().base()),
          store_->arena().size()};
}

absl::Status CoreWorker::StoreLayout(
    const ObjectId& id, Format format, std::string_view metadata,
    const std::vector<std::string_view>& buffers, const std::string& owner) {
  std::vector<uint64_t> sizes;
  sizes.reserve(buffers.size());
  for (const auto& b : buffers) sizes.push_back(b.size());
  auto dst = CreateInStore(id, LayoutSize(metadata.size(), sizes), 0, owner);
  if (!dst.ok()) return dst.status();
  auto at = WriteLayout(*dst, format, metadata, sizes);
  for (size_t i = 0; i < buffers.size(); ++i) {
    std::memcpy(at[i], buffers[i].data(), buffers[i].size());
  }
  absl::Status s = store_->Seal(id);
  ExitIfStoreGone(s);
  return s;
}

absl::StatusOr<ObjectId> CoreWorker::PutLayout(
    Format format, std::string_view metadata,
    const std::vector<std::string_view>& buffers,
    const std::vector<ObjectId>& contained) {
  uint64_t size = metadata.size();
  for (const auto& b : buffers) size += b.size();
  ObjectId id = NextPutId();
  if (size > kInlineThreshold && store_) {
    absl::Status s = StoreLayout(id, format, metadata, buffers);
    if (!s.ok()) return s;
    objects_.AddPending(id);
    if (!contained.empty()) objects_.SetContained(id, contained);
    objects_.SetInStore(id, node_id_);
    return id;
  }
  if (size > kInlineThreshold) {
    return absl::InvalidArgumentError("no object store to hold a large value");
  }
  objects_.AddPending(id);
  if (!contained.empty()) objects_.SetContained(id, contained);
  objects_.SetValue(id, EncodeLayout(format, metadata, buffers));
  return id;
}

std::optional<std::vector<CoreWorker::LayoutResult>> CoreWorker::GetLayouts(
    const std::vector<ObjectId>& ids, int64_t timeout_ms) {
  absl::Time deadline = Deadline(timeout_ms);
  while (true) {
    bool lost = false;
    auto out = TryGetLayouts(ids, RemainingMs(deadline), &lost);
    // An object was lost and is being rebuilt (or failed): wait again.
    if (!lost) return out;
  }
}

std::optional<std::vector<CoreWorker::LayoutResult>> CoreWorker::TryGetLayouts(
    const std::vector<ObjectId>& ids, int64_t timeout_ms, bool* lost) {
  auto results = WaitResults(ids, timeout_ms);
  if (!results) return std::nullopt;
  std::vector<LayoutResult> out(ids.size());
  Prefetched pinned(store_);
  PrefetchResults(ids, *results, &pinned);
  for (size_t i = 0; i < ids.size(); ++i) {
    ObjectResult& r = (*results)[i];
    if (r.error) {
      out[i].error = std::move(r.error);
    } else if (r.store_node) {
      auto view = PinLocal(ids[i], *r.store_node, timeout_ms, &pinned);
      if (view.status().code() == absl::StatusCode::kDataLoss) {
        Recover(ids[i], *r.store_node);
        *lost = true;
        return std::nullopt;  // the pins taken go with `out`
      }
      if (!view.ok()) {
        out[i].error = MakeError(rpc::ErrorInfo::INVALID,
                                 std::string(view.status().message()));
        continue;
      }
      std::shared_ptr<ObjectStoreClient> store = store_;
      out[i].holder = std::shared_ptr<const void>(
          view->data, [store, id = ids[i]](const void*) {
            store->Release(id).IgnoreError();
          });
      out[i].bytes = std::string_view(reinterpret_cast<const char*>(view->data),
                                      view->data_size);
    } else {
      out[i].bytes = *r.value;
      out[i].holder = r.value;
    }
  }
  return out;
}

void CoreWorker::ExecuteWithHandler(std::shared_ptr<Execution> e) {
  const rpc::TaskSpec& spec = e->req->spec();
  rpc::PushTaskReply* reply = e->reply;
  bool method = !spec.actor_id().empty() && !spec.actor_creation();
  {
    absl::MutexLock lock(&exec_mu_);
    if (method && !actor_) {
      reply->set_ok(false);
      *reply->mutable_error() =
          MakeError(rpc::ErrorInfo::INVALID, "this worker serves no actor",
                    spec.function_name());
      return Finish(*e);
    }
    running_[spec.task_id()] = e->req->lease_id();
  }
  std::vector<TaskArgView> args;
  args.reserve(spec.args_size());
  Prefetched pinned(store_);
  PrefetchArgs(spec, &pinned);
  for (const auto& arg : spec.args()) {
    if (!arg.has_ref()) {
      args.push_back({arg.value(), nullptr});
      continue;
    }
    auto id = ObjectId::FromBinary(arg.ref().object_id());
    auto source = NodeId::FromBinary(arg.ref().store_node_id());
    absl::StatusOr<ObjectView> view =
        absl::InvalidArgumentError("bad argument id");
    if (id.ok() && source.ok()) view = PinLocal(*id, *source, 30000, &pinned);
    if (!view.ok()) {
      reply->set_ok(false);
      *reply->mutable_error() = ArgumentError(
          id.ok() ? *id : ObjectId(), view.status(), spec.function_name());
      absl::MutexLock lock(&exec_mu_);
      running_.erase(spec.task_id());
      return Finish(*e);
    }
    std::shared_ptr<ObjectStoreClient> store = store_;
    std::shared_ptr<const void> pin(view->data, [store, id = *id](const void*) {
      store->Release(id).IgnoreError();
    });
    args.push_back({std::string_view(reinterpret_cast<const char*>(view->data),
                                     view->data_size),
                    std::move(pin)});
  }
  auto start = std::chrono::steady_clock::now();
  e->run_start_us = TaskEvents::Now();
  options_.task_handler(spec, std::move(args), reply, [this, e, start] {
    const rpc::TaskSpec& spec = e->req->spec();
    e->run_end_us = TaskEvents::Now();
    // How long tasks run decides whether callers pipeline them.
    e->reply->set_run_us(std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::steady_clock::now() - start)
                             .count());
    {
      absl::MutexLock lock(&exec_mu_);
      running_.erase(spec.task_id());
      if (spec.actor_creation() && e->reply->ok()) {
        // The instance lives in the language runtime; this marks the
        // worker as serving it. Calls run on max_concurrency threads.
        actor_ = std::make_shared<int>(0);
        for (int i = 1; i < spec.max_concurrency(); ++i) {
          exec_pool_.emplace_back([this] { ExecuteLoop(); });
        }
      }
    }
    Finish(*e);
  });
}

absl::Status CoreWorker::HandleCancelTask(const rpc::CancelTaskRequest& req,
                                          rpc::CancelTaskReply* reply) {
  auto task = ParseId<TaskId>(req.task_id(), "task_id");
  if (!task.ok()) return task.status();
  if (req.as_owner()) {
    // A borrower's loom.cancel: ours to cancel only if we own the return
    // (never passed on again).
    ObjectId ret = ObjectId::ForReturn(*task, 1);
    if (!objects_.OwnerOf(ret).empty()) return absl::OkStatus();
    auto found = CancelTask(ret, req.force(), req.keep_children());
    if (!found.ok()) return found.status();
    reply->set_found(*found);
    return absl::OkStatus();
  }
  if (!req.lease_id().empty()) {
    auto lease = ParseId<LeaseId>(req.lease_id(), "lease_id");
    if (!lease.ok()) return lease.status();
  }
  // A task pushed under a lease is the lease holder's to cancel: the
  // request names that lease. An actor call is never cancelled with force.
  auto allowed = [&](const std::string& pushed_lease) {
    if (pushed_lease.empty() && req.force()) {
      return absl::InvalidArgumentError(
          "force cannot cancel an actor call (it would kill the actor)");
    }
    if (!pushed_lease.empty() &&
        !ConstantTimeEquals(pushed_lease, req.lease_id())) {
      return absl::PermissionDeniedError(
          "the task runs under another lease than the one named");
    }
    return absl::OkStatus();
  };
  std::optional<Execution> queued;
  bool running = false;
  {
    absl::MutexLock lock(&exec_mu_);
    for (auto it = exec_queue_.begin(); it != exec_queue_.end(); ++it) {
      if (it->req->spec().task_id() != req.task_id()) continue;
      if (auto s = allowed(it->req->lease_id()); !s.ok()) return s;
      queued = std::move(*it);
      exec_queue_.erase(it);
      break;
    }
    if (!queued) {
      auto it = running_.find(req.task_id());
      if (it != running_.end()) {
        if (auto s = allowed(it->second); !s.ok()) return s;
        running = true;
      }
    }
  }
  reply->set_found(queued || running);
  if (queued) {
    queued->reply->set_ok(false);
    *queued->reply->mutable_error() = MakeError(
        rpc::ErrorInfo::TASK_CANCELLED, "the task was cancelled before it ran",
        queued->req->spec().function_name());
    Finish(*queued);
    return absl::OkStatus();
  }
  if (!running) return absl::OkStatus();
  if (req.force()) {
    spdlog::info("task cancelled with force: worker exits");
    _exit(1);
  }
  if (options_.cancel_handler) {
    options_.cancel_handler(*task, req.keep_children());
  }
  return absl::OkStatus();
}

ObjectId CoreWorker::PlacementGroupReady(const std::string& pg_id,
                                         std::string value) {
  ObjectId id = NextPutId();
  objects_.AddPending(id);
  {
    absl::MutexLock lock(&exec_mu_);
    ++pg_waiting_;
  }
  std::thread([this, id, pg_id, value = std::move(value)] {
    WaitForPlacementGroup(id, pg_id, value);
    absl::MutexLock lock(&exec_mu_);
    --pg_waiting_;  // the last use of `this`
  }).detach();
  return id;
}

void CoreWorker::WaitForPlacementGroup(const ObjectId& id,
                                       const std::string& pg_id,
                                       const std::string& value) {
  // Long polls of a second, so that Shutdown never waits long.
  while (!shut_down_) {
    auto info = raylet_->GetPlacementGroup(pg_id, true, 1000);
    if (!info.ok()) {
      if (info.status().code() == absl::StatusCode::kDeadlineExceeded) {
        continue;
      }
      objects_.SetError(id, MakeError(rpc::ErrorInfo::INVALID,
                                      std::string(info.status().message())));
      return;
    }
    switch (info->state()) {
      case rpc::PlacementGroupInfo::CREATED:
        objects_.SetValue(id, value);
        return;
      case rpc::PlacementGroupInfo::INFEASIBLE:
        objects_.SetError(id, MakeError(rpc::ErrorInfo::INFEASIBLE,
                                        "placement group: " + info->message()));
        return;
      case rpc::PlacementGroupInfo::REMOVED:
        objects_.SetError(id, MakeError(rpc::ErrorInfo::INVALID,
                                        "the placement group was removed"));
        return;
      default:
        continue;
    }
  }
}

absl::StatusOr<bool> CoreWorker::CancelTask(const ObjectId& ret, bool force,
                                            bool keep_children) {
  if (std::string owner = objects_.OwnerOf(ret); !owner.empty()) {
    // Borrowed: its owner submitted the task and cancels it.
    if (objects_.TryGet(ret)) return false;
    return owners_->CancelAtOwner(owner, ret.Task(), force, keep_children);
  }
  if (submitter_ == nullptr || objects_.TryGet(ret)) return false;
  if (actor_submitter_ != nullptr) {
    auto actor_call =
        actor_submitter_->Cancel(ret.Task(), force, keep_children);
    if (!actor_call.ok() || *actor_call) return actor_call;
  }
  submitter_->Cancel(ret.Task(), force, keep_children);
  return true;
}

// Raw objects (Buffer, Tensor): bytes plus a small metadata string.

absl::StatusOr<ObjectId> CoreWorker::PutRaw(std::string_view data,
                                            std::string_view metadata) {
  ObjectId id = NextPutId();
  if (data.size() + metadata.size() > kInlineThreshold && store_) {
    auto dst = CreateInStore(id, LayoutSize(metadata.size(), {data.size()}), 0);
    if (!dst.ok()) return dst.status();  // ResourceExhausted names the sizes
    auto at = WriteLayout(*dst, Format::kRaw, metadata, {data.size()});
    std::memcpy(at[0], data.data(), data.size());
    absl::Status s = store_->Seal(id);
    if (!s.ok()) return s;
    objects_.AddPending(id);
    objects_.SetInStore(id, node_id_);
    return id;
  }
  if (data.size() > kInlineThreshold) {
    return absl::InvalidArgumentError("no object store to hold a large buffer");
  }
  objects_.AddPending(id);
  objects_.SetValue(id, EncodeLayout(Format::kRaw, metadata, {data}));
  return id;
}

std::optional<CoreWorker::RawResult> CoreWorker::GetRaw(const ObjectId& id,
                                                        int64_t timeout_ms) {
  absl::Time deadline = Deadline(timeout_ms);
  std::optional<std::vector<ObjectResult>> results;
  absl::StatusOr<ObjectView> view = absl::UnknownError("not read");
  while (true) {
    results = WaitResults({id}, RemainingMs(deadline));
    if (!results) return std::nullopt;
    ObjectResult& r = (*results)[0];
    if (r.error || !r.store_node) break;
    view = PinLocal(id, *r.store_node, timeout_ms);
    if (view.status().code() != absl::StatusCode::kDataLoss) break;
    Recover(id, *r.store_node);  // then wait for it again
  }
  ObjectResult& r = (*results)[0];
  RawResult out;
  if (r.error) {
    out.error = r.error;
    return out;
  }
  const uint8_t* data;
  uint64_t size;
  if (r.store_node) {
    if (!view.ok()) {
      out.error = MakeError(rpc::ErrorInfo::INVALID,
                            std::string(view.status().message()));
      return out;
    }
    // The pin lasts as long as the view: released with the last holder.
    std::shared_ptr<ObjectStoreClient> store = store_;
    out.object.holder = std::shared_ptr<const void>(
        view->data,
        [store, id](const void*) { store->Release(id).IgnoreError(); });
    data = view->data;
    size = view->data_size;
  } else {
    out.object.holder = r.value;
    data = reinterpret_cast<const uint8_t*>(r.value->data());
    size = r.value->size();
  }
  absl::Status s = ViewRaw(data, size, !r.store_node, &out.object);
  if (!s.ok()) out.error = MakeError(rpc::ErrorInfo::INVALID, s.ToString());
  return out;
}

absl::Status CoreWorker::ViewRaw(const uint8_t* data, uint64_t size,
                                 bool inline_value, internal::RawObject* out) {
  auto layout = ParseLayout(data, size);
  if (!layout.ok() && inline_value) {
    // An inline C++ value is its msgpack bytes alone.
    out->msgpack = true;
    out->data = data;
    out->size = size;
    return absl::OkStatus();
  }
  if (layout.ok() && layout->buffers.size() == 1 &&
      (layout->format == Format::kRaw || layout->format == Format::kMsgpack)) {
    out->msgpack = layout->format == Format::kMsgpack;
    out->metadata = std::string(layout->metadata);
    out->data = reinterpret_cast<const uint8_t*>(layout->buffers[0].data());
    out->size = layout->buffers[0].size();
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      layout.ok() ? "object is a Python value (pickle), not a C++ one"
                  : std::string(layout.status().message()));
}

}  // namespace loom
