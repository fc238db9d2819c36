// Lost objects (docs/architecture.md, "Lineage reconstruction"): reading an
// object into this node's store finds it lost (DataLoss) once no live node
// holds a copy; a `get` that does re-runs the task that made it, first those
// of its lost arguments, within each task's max_retries; what cannot be
// rebuilt fails with OBJECT_LOST saying why.
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "object_store/store_client.h"
#include "proto/gcs.grpc.pb.h"
#include "runtime/core_worker.h"
#include "runtime/lineage.h"
#include "runtime/raylet_client.h"
#include "runtime/task_args.h"
#include "runtime/task_submitter.h"
#include "src/common/rpc.h"

namespace loom {
namespace {

// How long a pull retries a source that does not answer, before the head
// declares its node dead (the head's node timeout is 5 s by default).
constexpr absl::Duration kUnreachableSourceWait = absl::Seconds(30);

}  // namespace

absl::Status CoreWorker::MakeLocal(const ObjectId& id, const NodeId& node) {
  if (!store_)
    return absl::FailedPreconditionError("this process has no object store");
  if (node == node_id_) return absl::OkStatus();
  absl::Status s = raylet_->PullObject(id, node);
  // A node killed moments ago does not answer until the head declares it
  // dead; from then on a pull that finds no live copy says NOT_FOUND.
  absl::Time until = absl::Now() + kUnreachableSourceWait;
  while (s.code() == absl::StatusCode::kUnavailable && absl::Now() < until &&
         !shut_down_) {
    absl::SleepFor(absl::Milliseconds(200));
    s = raylet_->PullObject(id, node);
  }
  if (s.code() == absl::StatusCode::kNotFound) {
    return absl::DataLossError(s.message());
  }
  return s;
}

void CoreWorker::Prefetch(
    const std::vector<std::pair<ObjectId, NodeId>>& objects,
    Prefetched* pinned) {
  if (!store_) return;
  std::vector<std::pair<ObjectId, NodeId>> remote;
  for (const auto& [id, node] : objects) {
    if (node != node_id_) remote.emplace_back(id, node);
  }
  if (remote.size() <= 1) return;
  raylet_->PullObjects(remote);
  if (!pinned) return;
  // Those here now, pinned in one call (without waiting): each read then
  // skips its own pull and store round trips. One evicted meanwhile, or
  // not pulled, is read the usual way.
  std::vector<ObjectId> ids;
  for (const auto& [id, node] : remote) ids.push_back(id);
  auto views = store_->Get(ids, 0);
  if (!views.ok()) return;
  for (size_t i = 0; i < ids.size(); ++i) {
    if ((*views)[i]) pinned->Add(ids[i], *(*views)[i]);
  }
}

void CoreWorker::PrefetchResults(const std::vector<ObjectId>& ids,
                                 const std::vector<ObjectResult>& results,
                                 Prefetched* pinned) {
  std::vector<std::pair<ObjectId, NodeId>> stored;
  for (size_t i = 0; i < results.size(); ++i) {
    const ObjectResult& r = results[i];
    if (!r.error && r.store_node) stored.emplace_back(ids[i], *r.store_node);
  }
  Prefetch(stored, pinned);
}

void CoreWorker::PrefetchArgs(const rpc::TaskSpec& spec, Prefetched* pinned) {
  std::vector<std::pair<ObjectId, NodeId>> refs;
  for (const auto& arg : spec.args()) {
    if (!arg.has_ref() || arg.ref().store_node_id().empty()) continue;
    auto id = ObjectId::FromBinary(arg.ref().object_id());
    auto node = NodeId::FromBinary(arg.ref().store_node_id());
    if (id.ok() && node.ok()) refs.emplace_back(*id, *node);
  }
  Prefetch(refs, pinned);
}

absl::StatusOr<ObjectView> CoreWorker::PinLocal(const ObjectId& id,
                                                const NodeId& node,
                                                int64_t timeout_ms,
                                                Prefetched* prefetched) {
  if (prefetched) {
    if (auto view = prefetched->Take(id)) return *view;
  }
  absl::Status local = MakeLocal(id, node);
  if (!local.ok()) return local;
  auto views = store_->Get({id}, timeout_ms < 0 ? 30000 : timeout_ms);
  if (node == node_id_ &&
      views.status().code() == absl::StatusCode::kUnavailable) {
    // This node's store does not answer: its raylet died. The copy is lost
    // once the head, declaring the node dead, knows no other.
    absl::Time until = absl::Now() + kUnreachableSourceWait;
    while (HasLiveCopy(id) && absl::Now() < until && !shut_down_) {
      absl::SleepFor(absl::Milliseconds(200));
    }
    if (!HasLiveCopy(id)) return absl::DataLossError(views.status().message());
  }
  if (!views.ok()) return views.status();
  if (!(*views)[0]) {
    return absl::NotFoundError(absl::StrCat(
        "object ", id.Hex(), " is missing from this node's store"));
  }
  return *(*views)[0];
}

bool CoreWorker::HasLiveCopy(const ObjectId& id) {
  if (options_.gcs_address.empty()) return true;
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 5000);
  rpc::GetObjectLocationsRequest req;
  req.set_object_id(id.Binary());
  rpc::GetObjectLocationsReply reply;
  grpc::Status s = clients_.Stub<rpc::Gcs>(options_.gcs_address)
                       ->GetObjectLocations(&ctx, req, &reply);
  // The head forgets a dead node's copies; when it cannot be asked, assume
  // a copy lives (the task that reads it fails if not).
  return !s.ok() || reply.node_ids_size() > 0;
}

void CoreWorker::Recover(const ObjectId& id, const NodeId& node) {
  // Claim it: one caller rebuilds, the others wait for the result.
  if (!objects_.Unready(id, node)) return;
  std::string lost = absl::StrCat("object ", id.Hex(), " is lost: node ",
                                  node.Hex().substr(0, 12),
                                  ", which held its only copy, died");
  auto fail = [&](absl::string_view why) {
    spdlog::warn("{}; {}", lost, std::string(why));
    objects_.SetError(
        id, MakeError(rpc::ErrorInfo::OBJECT_LOST,
                      absl::StrCat(lost, "; ", why), "", "ObjectLostError"));
  };
  if (std::string owner = objects_.OwnerOf(id); !owner.empty()) {
    return fail(absl::StrCat("it is borrowed, and only its owner (", owner,
                             ") could rebuild it"));
  }
  if (id.IsPut()) {
    return fail("it was made by put, and put objects cannot be rebuilt");
  }
  if (!lineage_ || !submitter_) return fail("this process keeps no lineage");
  auto retry = lineage_->TakeRetry(id.Task());
  if (!retry.ok()) return fail(retry.status().message());
  rpc::TaskSpec& spec = retry->spec;
  // Its lost arguments first: the task waits for them as for any argument.
  std::vector<ObjectId> refs;
  for (auto& arg : *spec.mutable_args()) {
    if (!arg.has_ref()) continue;
    arg.mutable_ref()->clear_store_node_id();
    ObjectId a = *ObjectId::FromBinary(arg.ref().object_id());
    refs.push_back(a);
    auto r = objects_.TryGet(a);
    if (r && r->store_node && *r->store_node != node_id_ && !HasLiveCopy(a)) {
      Recover(a, *r->store_node);
    }
  }
  // The other returns of the task come again with it.
  for (const ObjectId& ret : ReturnIds(spec)) {
    if (ret != id) objects_.Unready(ret, std::nullopt);
  }
  for (const ObjectId& a : refs) objects_.AddRef(a);
  spdlog::warn("{}; running {} again (attempt {} of {})", lost,
               spec.function_name(), spec.attempt(), spec.max_retries());
  submitter_->Resubmit(std::move(spec), std::move(retry->key));
}

}  // namespace loom
