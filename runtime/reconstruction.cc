// Lineage reconstruction (docs/architecture.md): a `get` that finds every
// copy of an object gone re-runs the task that made it, first those of its
// lost arguments, within each task's max_retries; what cannot be rebuilt
// fails with OBJECT_LOST saying why.
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "proto/gcs.grpc.pb.h"
#include "runtime/core_worker.h"
#include "runtime/lineage.h"
#include "runtime/raylet_client.h"
#include "runtime/task_args.h"
#include "runtime/task_submitter.h"
#include "src/common/rpc.h"

namespace loom {

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
