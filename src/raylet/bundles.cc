// src/raylet/bundles.cc
//
// NodeManager's side of placement groups: a bundle is prepared (its
// resources reserved), committed (offered under the group's own resource
// names, so that only its tasks fit), and released (what runs in it stops).
// A lease of a bundle's GPUs runs on the GPUs the bundle reserved. What an
// earlier head asked for and a restarted one does not know (an actor's
// lease, a bundle) is released when the node registers with it again.
#include <set>

#include "absl/strings/str_cat.h"
#include "scheduler/resource_set.h"
#include "src/common/logging.h"
#include "src/common/wire.h"
#include "src/raylet/node_manager.h"

namespace loom::raylet {

namespace {

absl::StatusOr<std::string> BundleKey(const rpc::BundleRequest& req) {
  auto pg = ParseId<PlacementGroupId>(req.pg_id(), "pg_id");
  if (!pg.ok()) return pg.status();
  if (req.index() < 0 || req.index() > 100000) {
    return absl::InvalidArgumentError("bundle index out of range");
  }
  return absl::StrCat(req.pg_id(), "#", req.index());
}

}  // namespace

void NodeManager::AddBundleGpus(Allocation* allocation) {
  // A lease of a bundle's GPUs runs on the GPUs the bundle reserved.
  if (!allocation->gpu_ids.empty() || bundles_.empty()) return;
  std::set<int> ids;
  for (const auto& [name, qty] : allocation->resources.ToMap()) {
    if (name.rfind("GPU_group_", 0) != 0) continue;
    for (const auto& [key, b] : bundles_) {
      if (b.offered.Get(name) > FixedPoint()) {
        ids.insert(b.reserved.gpu_ids.begin(), b.reserved.gpu_ids.end());
      }
    }
  }
  allocation->gpu_ids.assign(ids.begin(), ids.end());
  // The bundle holds their capacity: releasing this lease returns none.
  allocation->gpu_amounts.assign(ids.size(), FixedPoint());
}

void NodeManager::HandlePrepareBundle(const rpc::BundleRequest& req,
                                      rpc::BundleReply* reply, Done done) {
  if (gcs_) gcs_->Active();
  auto key = BundleKey(req);
  if (!key.ok()) return done(key.status());
  auto demand = ResourcesFromProto(req.resources());
  if (!demand.ok()) return done(demand.status());
  if (auto it = bundles_.find(*key); it != bundles_.end()) {  // a retry
    it->second.head_epoch = req.head_epoch();  // maybe of a restarted head
    return done(absl::OkStatus());
  }
  auto alloc = resources_.Acquire(*demand);
  if (!alloc) {
    return done(absl::ResourceExhaustedError(absl::StrCat(
        "bundle ", demand->ToString(), " does not fit now: available ",
        resources_.available().ToString())));
  }
  Bundle& b = bundles_[*key];
  b.pg_id = req.pg_id();
  b.index = req.index();
  b.head_epoch = req.head_epoch();
  b.reserved = std::move(*alloc);
  done(absl::OkStatus());
}

void NodeManager::HandleCommitBundle(const rpc::BundleRequest& req,
                                     rpc::BundleReply* reply, Done done) {
  if (gcs_) gcs_->Active();
  auto key = BundleKey(req);
  if (!key.ok()) return done(key.status());
  auto it = bundles_.find(*key);
  if (it == bundles_.end()) {
    return done(absl::NotFoundError("bundle was not prepared here"));
  }
  Bundle& b = it->second;
  if (!b.committed) {
    std::string pg = HexEncode(req.pg_id());
    for (const auto& [name, qty] : b.reserved.resources.ToMap()) {
      FixedPoint q = FixedPoint::FromDouble(qty);
      b.offered.Set(BundleResource(name, pg, req.index()), q);
      b.offered.Set(BundleResource(name, pg, -1), q);
    }
    // "bundle": what asks for nothing else still lands in the bundle.
    FixedPoint marker = FixedPoint::FromInt(1000);
    b.offered.Set(BundleResource("bundle", pg, req.index()), marker);
    b.offered.Set(BundleResource("bundle", pg, -1), marker);
    resources_.AddCapacity(b.offered);
    b.committed = true;
    totals_changed_ = true;
  }
  done(absl::OkStatus());
  Dispatch();
}

void NodeManager::HandleReleaseBundle(const rpc::BundleRequest& req,
                                      rpc::BundleReply* reply, Done done) {
  if (gcs_) gcs_->Active();
  auto key = BundleKey(req);
  if (!key.ok()) return done(key.status());
  ReleaseBundle(*key);  // none: released already
  done(absl::OkStatus());
  Dispatch();
}

bool NodeManager::ReleaseBundle(const std::string& key) {
  auto it = bundles_.find(key);
  if (it == bundles_.end()) return false;
  if (it->second.committed) {
    // What runs in the bundle stops: leases holding any of its resources.
    std::vector<LeaseId> inside;
    for (const auto& [id, lease] : leases_) {
      for (const auto& [name, qty] : lease.allocation.resources.ToMap()) {
        if (it->second.offered.Get(name) > FixedPoint()) {
          inside.push_back(id);
          break;
        }
      }
    }
    for (const LeaseId& id : inside) ReleaseLease(id, /*kill_worker=*/true);
    it = bundles_.find(key);
    resources_.RemoveCapacity(it->second.offered);
    totals_changed_ = true;
  }
  resources_.Release(it->second.reserved);
  bundles_.erase(it);
  return true;
}

void NodeManager::FillHeld(rpc::RegisterNodeRequest* req) const {
  for (const auto& [id, lease] : leases_) {
    if (lease.head_epoch.empty()) continue;
    rpc::HeldForHead* held = req->add_held();
    held->set_lease_id(id.Binary());
    held->set_head_epoch(lease.head_epoch);
  }
  for (const auto& [key, b] : bundles_) {
    rpc::HeldForHead* held = req->add_held();
    held->set_pg_id(b.pg_id);
    held->set_index(b.index);
    held->set_head_epoch(b.head_epoch);
  }
}

void NodeManager::ReleaseUnknown(const rpc::RegisterNodeReply& reply) {
  for (const rpc::HeldForHead& held : reply.release()) {
    if (!held.lease_id().empty()) {
      auto id = LeaseId::FromBinary(held.lease_id());
      if (!id.ok() || !leases_.contains(*id)) continue;
      spdlog::warn(
          "releasing lease {}: asked for by a head that died before "
          "saving it",
          id->Hex());
      ReleaseLease(*id, /*kill_worker=*/true);
    } else if (ReleaseBundle(absl::StrCat(held.pg_id(), "#", held.index()))) {
      spdlog::warn(
          "released bundle {} of group {}: prepared for a head that "
          "died before saving it",
          held.index(), HexEncode(held.pg_id()));
    }
  }
  Dispatch();
}

}  // namespace loom::raylet
