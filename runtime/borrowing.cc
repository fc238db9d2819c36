// Borrowing: refs that travel inside values. The owner counts one borrow
// unit per registration; a borrower registers before the value that carried
// the ref can go, and returns its units when its last local ref is gone.
// An executor returning refs registers its caller on the caller's behalf.
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "runtime/core_worker.h"
#include "runtime/owner_client.h"
#include "runtime/worker_checks.h"
#include "src/common/wire.h"

namespace loom {

std::string CoreWorker::OwnerOf(const ObjectId& id) const {
  std::string owner = objects_.OwnerOf(id);
  return owner.empty() ? address_ : owner;
}

bool CoreWorker::Borrow(const ObjectId& id, const std::string& owner) {
  if (owner.empty() || owner == address_) return false;  // ours
  return objects_.AddBorrowed(id, owner);
}

void CoreWorker::RegisterBorrows(
    const std::vector<std::pair<ObjectId, std::string>>& borrows) {
  absl::flat_hash_map<std::string, std::vector<ObjectId>> by_owner;
  for (const auto& [id, owner] : borrows) by_owner[owner].push_back(id);
  for (const auto& [owner, ids] : by_owner) {
    auto unknown = owners_->AddBorrows(owner, ids, address_);
    absl::flat_hash_set<ObjectId> lost;
    std::string why;
    if (!unknown.ok()) {
      lost.insert(ids.begin(), ids.end());
      why = absl::StrCat("its owner at ", owner, " is unreachable (",
                         unknown.status().message(), ")");
    } else {
      lost.insert(unknown->begin(), unknown->end());
      why = absl::StrCat("its owner at ", owner, " freed it");
    }
    for (const ObjectId& id : ids) {
      if (lost.contains(id)) {
        objects_.SetError(id, MakeError(rpc::ErrorInfo::OWNER_DIED,
                                        absl::StrCat("object ", id.Hex(),
                                                     " is lost: ", why)));
      } else {
        objects_.Registered(id, 1);
      }
    }
  }
}

void CoreWorker::LendToCaller(const std::vector<ObjectId>& ids,
                              const rpc::Address& caller,
                              rpc::PushTaskReply* reply) {
  std::string borrower = HostPort(caller);
  absl::flat_hash_map<std::string, std::vector<ObjectId>> remote;
  for (const ObjectId& id : ids) {
    std::string owner = OwnerOf(id);
    if (owner == address_) {
      std::vector<ObjectId> unknown;
      AddBorrowUnits(borrower, {id}, &unknown);
      if (!unknown.empty()) continue;
    } else {
      remote[owner].push_back(id);
    }
    rpc::ObjectRef* ref = reply->add_contained();
    ref->set_object_id(id.Binary());
    size_t colon = owner.rfind(':');
    ref->mutable_owner()->set_host(owner.substr(0, colon));
    ref->mutable_owner()->set_port(std::atoi(owner.c_str() + colon + 1));
  }
  for (const auto& [owner, owned] : remote) {
    auto s = owners_->AddBorrows(owner, owned, borrower);
    // The caller's get will then find the owner gone: an OWNER_DIED error.
    if (!s.ok())
      spdlog::warn("lending refs owned by {}: {}", owner,
                   s.status().ToString());
  }
}

void CoreWorker::FetchBorrowed(const ObjectId& id, const std::string& owner) {
  owners_->Fetch(
      owner, id, [this, id, owner](absl::Status s, rpc::GetObjectReply& reply) {
        if (!s.ok()) {
          objects_.SetError(
              id,
              MakeError(
                  rpc::ErrorInfo::OWNER_DIED,
                  absl::StrCat("the owner of object ", id.Hex(), " at ", owner,
                               " died or is unreachable (", s.message(), ")")));
          return;
        }
        auto node = NodeId::FromBinary(reply.node_id());
        if (!reply.ok()) {
          objects_.SetError(id, reply.error());
        } else if (reply.in_store() && node.ok()) {
          objects_.SetInStore(id, *node);
        } else {
          objects_.SetValue(id, std::move(*reply.mutable_value()));
        }
      });
}

void CoreWorker::HandleGetObject(const rpc::GetObjectRequest& req,
                                 rpc::GetObjectReply* reply,
                                 std::function<void(absl::Status)> done) {
  auto id = ParseId<ObjectId>(req.object_id(), "object_id");
  if (!id.ok()) return done(id.status());
  objects_.OnReady(*id, [this, id = *id, reply, done = std::move(done)] {
    auto r = objects_.TryGet(id);
    if (!r) {
      reply->set_ok(false);
      *reply->mutable_error() = MakeError(
          rpc::ErrorInfo::OWNER_DIED,
          absl::StrCat("object ", id.Hex(), " was freed by its owner"));
    } else if (r->error) {
      reply->set_ok(false);
      *reply->mutable_error() = *r->error;
    } else if (r->store_node) {
      reply->set_ok(true);
      reply->set_in_store(true);
      reply->set_node_id(r->store_node->Binary());
    } else {
      reply->set_ok(true);
      reply->set_value(*r->value);
    }
    done(absl::OkStatus());
  });
}

void CoreWorker::AddBorrowUnits(const std::string& borrower,
                                const std::vector<ObjectId>& ids,
                                std::vector<ObjectId>* unknown) {
  if (borrower.empty() || borrower == address_) {
    // Lent to ourselves: a plain reference.
    for (const ObjectId& id : ids) {
      if (!objects_.AddRef(id)) unknown->push_back(id);
    }
    return;
  }
  bool watch = false;
  {
    absl::MutexLock lock(&borrowers_mu_);
    auto [it, fresh] = borrowers_.try_emplace(borrower);
    watch = fresh;
    for (const ObjectId& id : ids) {
      if (objects_.AddRef(id)) {
        it->second[id]++;
      } else {
        unknown->push_back(id);
      }
    }
  }
  if (watch) {
    owners_->WatchBorrower(borrower,
                           [this, borrower] { BorrowerGone(borrower); });
  }
}

void CoreWorker::RemoveBorrowUnits(const std::string& borrower,
                                   const std::vector<ObjectId>& ids) {
  std::vector<ObjectId> drop;
  if (borrower.empty() || borrower == address_) {
    drop = ids;
  } else {
    absl::MutexLock lock(&borrowers_mu_);
    auto it = borrowers_.find(borrower);
    if (it == borrowers_.end()) return;  // gone already: units dropped
    for (const ObjectId& id : ids) {
      auto unit = it->second.find(id);
      if (unit == it->second.end()) continue;
      if (--unit->second == 0) it->second.erase(unit);
      drop.push_back(id);
    }
  }
  for (const ObjectId& id : drop) objects_.RemoveRef(id);
}

void CoreWorker::BorrowerGone(const std::string& borrower) {
  absl::flat_hash_map<ObjectId, int64_t> units;
  {
    absl::MutexLock lock(&borrowers_mu_);
    auto it = borrowers_.find(borrower);
    if (it == borrowers_.end()) return;
    units = std::move(it->second);
    borrowers_.erase(it);
  }
  for (const auto& [id, n] : units) {
    for (int64_t i = 0; i < n; ++i) objects_.RemoveRef(id);
  }
}

void CoreWorker::HandleWatchBorrower(std::function<void()> done) {
  {
    absl::MutexLock lock(&borrowers_mu_);
    if (!watchers_done_) {
      watchers_.push_back(std::move(done));
      return;
    }
  }
  done();
}

absl::Status CoreWorker::HandleGetReferences(
    const rpc::GetReferencesRequest& req, rpc::GetReferencesReply* reply) {
  if (req.object_ids_size() > 1000) {
    return absl::InvalidArgumentError("more than 1,000 ids in one ask");
  }
  std::vector<ObjectId> ids;
  for (const std::string& raw : req.object_ids()) {
    auto id = ParseId<ObjectId>(raw, "object_ids");
    if (!id.ok()) return id.status();
    ids.push_back(*id);
  }
  // Lent ids -> (borrowers, units).
  absl::flat_hash_map<ObjectId, std::pair<int64_t, int64_t>> lent;
  {
    absl::MutexLock lock(&borrowers_mu_);
    for (const auto& [borrower, units] : borrowers_) {
      for (const ObjectId& id : ids) {
        auto it = units.find(id);
        if (it == units.end()) continue;
        auto& [who, n] = lent[id];
        who++;
        n += it->second;
      }
    }
  }
  for (const ObjectId& id : ids) {
    rpc::ObjectReferences* out = reply->add_objects();
    out->set_object_id(id.Binary());
    std::optional<int64_t> refs = objects_.OwnedRefs(id);
    out->set_owned(refs.has_value());
    if (!refs) continue;
    out->set_total(*refs);
    auto it = lent.find(id);
    if (it == lent.end()) continue;
    out->set_borrowers(it->second.first);
    out->set_borrowed_units(it->second.second);
  }
  return absl::OkStatus();
}

absl::Status CoreWorker::HandleUpdateBorrows(
    const rpc::UpdateBorrowsRequest& req, rpc::UpdateBorrowsReply* reply) {
  if (auto s = ValidateBorrower(req.borrower()); !s.ok()) return s;
  if (req.add_size() + req.remove_size() > (1 << 20)) {
    return absl::InvalidArgumentError("more than 2^20 ids in one update");
  }
  std::vector<ObjectId> add, remove;
  for (const auto& b : req.add()) {
    auto id = ParseId<ObjectId>(b, "add");
    if (!id.ok()) return id.status();
    add.push_back(*id);
  }
  for (const auto& b : req.remove()) {
    auto id = ParseId<ObjectId>(b, "remove");
    if (!id.ok()) return id.status();
    remove.push_back(*id);
  }
  std::vector<ObjectId> unknown;
  AddBorrowUnits(req.borrower(), add, &unknown);
  for (const ObjectId& id : unknown) reply->add_unknown(id.Binary());
  RemoveBorrowUnits(req.borrower(), remove);
  return absl::OkStatus();
}

}  // namespace loom
