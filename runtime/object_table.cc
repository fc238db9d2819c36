#include "runtime/object_table.h"

#include <malloc.h>

namespace loom {

void ObjectTable::EraseLocked(
    absl::flat_hash_map<ObjectId, Entry>::iterator it) {
  entries_.erase(it);
  // A hash map keeps its capacity: 100,000 dropped refs left ~33 MiB of
  // empty slots. Shrunk once it is an eighth full, and the allocator's
  // free pages go back with it.
  if (entries_.capacity() > 4096 && entries_.size() * 8 < entries_.capacity()) {
    entries_.rehash(0);
    malloc_trim(0);
  }
}

rpc::ErrorInfo MakeError(rpc::ErrorInfo::Kind kind, std::string message,
                         std::string task_name, std::string type) {
  rpc::ErrorInfo e;
  e.set_kind(kind);
  e.set_message(std::move(message));
  e.set_task_name(std::move(task_name));
  e.set_type(std::move(type));
  return e;
}

void ObjectTable::AddPending(const ObjectId& id) {
  absl::MutexLock lock(&mu_);
  entries_.try_emplace(id);
}

void ObjectTable::SetValue(const ObjectId& id, std::string value) {
  ObjectResult r;
  r.value = std::make_shared<const std::string>(std::move(value));
  Resolve(id, std::move(r));
}

void ObjectTable::SetError(const ObjectId& id, rpc::ErrorInfo error) {
  ObjectResult r;
  r.error = std::move(error);
  Resolve(id, std::move(r));
}

void ObjectTable::SetInStore(const ObjectId& id, const NodeId& node) {
  ObjectResult r;
  r.store_node = node;
  Resolve(id, std::move(r));
}

void ObjectTable::Resolve(const ObjectId& id, ObjectResult result) {
  std::vector<std::function<void()>> callbacks;
  std::optional<Entry> freed;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;  // every reference dropped already
    Entry& e = it->second;
    if (e.ready) return;
    e.ready = true;
    e.result = std::move(result);
    if (e.result.error) ++errors_;
    callbacks.swap(e.on_ready);
    if (e.released && e.refs <= 0 && callbacks.empty()) {
      freed = std::move(e);
      EraseLocked(it);
    }
  }
  if (freed) Freed(id, std::move(*freed));
  for (auto& cb : callbacks) cb();
}

bool ObjectTable::Unready(const ObjectId& id,
                          const std::optional<NodeId>& node) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || !it->second.ready) return false;
  Entry& e = it->second;
  if (node && e.result.store_node != node) return false;
  e.ready = false;
  e.result = ObjectResult();
  return true;
}

void ObjectTable::Freed(const ObjectId& id, Entry e) {
  if (e.owner.empty()) {
    if (e.result.store_node && on_free_) on_free_(id, *e.result.store_node);
    if (on_owned_free_) on_owned_free_(id);
  } else {
    --borrowed_;
    if (e.registrations > 0 && on_release_) {
      on_release_(id, e.owner, e.registrations);
    }
  }
  for (const ObjectId& inner : e.contained) RemoveRef(inner);
}

void ObjectTable::Fetch(const std::vector<ObjectId>& ids) {
  if (!on_fetch_ || borrowed_.load(std::memory_order_relaxed) == 0) return;
  std::vector<std::pair<ObjectId, std::string>> ask;
  {
    absl::MutexLock lock(&mu_);
    for (const ObjectId& id : ids) {
      auto it = entries_.find(id);
      if (it == entries_.end()) continue;
      Entry& e = it->second;
      if (e.owner.empty() || e.ready || e.fetching) continue;
      e.fetching = true;
      ask.emplace_back(id, e.owner);
    }
  }
  for (const auto& [id, owner] : ask) on_fetch_(id, owner);
}

bool ObjectTable::AddBorrowed(const ObjectId& id, const std::string& owner) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = entries_.try_emplace(id);
  if (inserted) {
    it->second.owner = owner;
    ++borrowed_;
  }
  return inserted;
}

void ObjectTable::Registered(const ObjectId& id, int64_t units) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it != entries_.end()) it->second.registrations += units;
}

void ObjectTable::AddBorrowedUnit(const ObjectId& id,
                                  const std::string& owner) {
  absl::MutexLock lock(&mu_);
  Entry& e = entries_[id];
  if (e.owner.empty()) {
    e.owner = owner;
    ++borrowed_;
  }
  e.registrations++;
  e.refs++;
}

std::string ObjectTable::OwnerOf(const ObjectId& id) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  return it == entries_.end() ? std::string() : it->second.owner;
}

void ObjectTable::SetContained(const ObjectId& id,
                               std::vector<ObjectId> inner) {
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it != entries_.end()) {
      auto& c = it->second.contained;
      c.insert(c.end(), inner.begin(), inner.end());
      return;
    }
  }
  for (const ObjectId& i : inner) RemoveRef(i);
}

void ObjectTable::OnReady(const ObjectId& id, std::function<void()> fn) {
  bool waiting = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it != entries_.end() && !it->second.ready) {
      it->second.on_ready.push_back(std::move(fn));
      waiting = true;
    }
  }
  if (waiting) {
    Fetch({id});
  } else {
    fn();
  }
}

std::optional<ObjectResult> ObjectTable::TryGet(const ObjectId& id) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || !it->second.ready) return std::nullopt;
  return it->second.result;
}

bool ObjectTable::ReadyLocked(const ObjectId& id) const {
  auto it = entries_.find(id);
  return it == entries_.end() || it->second.ready;
}

bool ObjectTable::AllReady(const std::vector<ObjectId>& ids) const {
  absl::MutexLock lock(&mu_);
  for (const auto& id : ids) {
    if (!ReadyLocked(id)) return false;
  }
  return true;
}

const rpc::ErrorInfo* ObjectTable::ErrorLocked(const ObjectId& id) const {
  auto it = entries_.find(id);
  if (it == entries_.end() || !it->second.ready || !it->second.result.error) {
    return nullptr;
  }
  return &*it->second.result.error;
}

bool ObjectTable::WaitReady(const std::vector<ObjectId>& ids,
                            Progress* progress, absl::Time deadline,
                            bool stop_at_error) {
  Fetch(ids);
  absl::MutexLock lock(&mu_);
  return AwaitReadyLocked(ids, progress, deadline, stop_at_error);
}

bool ObjectTable::AwaitReadyLocked(const std::vector<ObjectId>& ids,
                                   Progress* progress, absl::Time deadline,
                                   bool stop_at_error) {
  // Readiness only moves forward while the caller holds its refs, so each
  // check resumes where the last one stopped: O(n) in all, not O(n^2).
  // Errors are noted as the cursor passes them; past it they are looked
  // for only when one lands somewhere.
  // The mutex may evaluate it again once true: it stays true.
  Progress& p = *progress;
  auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    if (p.failed) return true;
    for (; p.cursor < ids.size(); ++p.cursor) {
      auto it = entries_.find(ids[p.cursor]);
      if (it == entries_.end()) continue;  // unknown: answered as an error
      if (!it->second.ready) break;
      if (stop_at_error && it->second.result.error) {
        p.failed = true;
        return true;
      }
    }
    if (p.cursor == ids.size()) return true;
    if (!stop_at_error || errors_ == p.errors_seen) return false;
    p.errors_seen = errors_;
    for (size_t i = p.cursor; i < ids.size(); ++i) {
      if (ErrorLocked(ids[i]) != nullptr) {
        p.failed = true;
        return true;
      }
    }
    return false;
  };
  return mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
}

std::optional<std::vector<ObjectResult>> ObjectTable::Get(
    const std::vector<ObjectId>& ids, absl::Time deadline, bool stop_at_error) {
  Fetch(ids);
  absl::MutexLock lock(&mu_);
  Progress progress;
  if (!AwaitReadyLocked(ids, &progress, deadline, stop_at_error)) {
    return std::nullopt;
  }
  // The first error among them, for those still pending.
  std::optional<rpc::ErrorInfo> failed;
  if (progress.failed) {
    for (const auto& id : ids) {
      if (const rpc::ErrorInfo* e = ErrorLocked(id)) {
        failed = *e;
        break;
      }
    }
  }
  std::vector<ObjectResult> out;
  out.reserve(ids.size());
  for (const auto& id : ids) {
    auto it = entries_.find(id);
    if (it != entries_.end() && !it->second.ready) {
      ObjectResult r;  // only when stopped at `failed`
      r.error = failed;
      out.push_back(std::move(r));
    } else if (it == entries_.end()) {
      ObjectResult r;
      r.error = MakeError(
          rpc::ErrorInfo::OWNER_DIED,
          "object " + id.Hex() + " is unknown here: freed, or owned elsewhere");
      out.push_back(std::move(r));
    } else {
      out.push_back(it->second.result);
    }
  }
  return out;
}

std::vector<bool> ObjectTable::Wait(const std::vector<ObjectId>& ids,
                                    size_t num_ready, absl::Time deadline) {
  Fetch(ids);
  absl::MutexLock lock(&mu_);
  std::vector<bool> seen(ids.size(), false);
  size_t count = 0;
  auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    for (size_t i = 0; i < ids.size() && count < num_ready; ++i) {
      if (!seen[i] && ReadyLocked(ids[i])) {
        seen[i] = true;
        ++count;
      }
    }
    return count >= num_ready;
  };
  mu_.AwaitWithDeadline(absl::Condition(&enough), deadline);
  std::vector<bool> out;
  out.reserve(ids.size());
  size_t taken = 0;
  for (const auto& id : ids) {
    bool r = ReadyLocked(id) && taken < num_ready;
    taken += r;
    out.push_back(r);
  }
  return out;
}

void ObjectTable::FailPending(const rpc::ErrorInfo& error) {
  std::vector<ObjectId> pending;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, e] : entries_) {
      if (!e.ready) pending.push_back(id);
    }
  }
  for (const ObjectId& id : pending) SetError(id, error);
}

bool ObjectTable::AddRef(const ObjectId& id) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;  // unknown: nothing to hold
  it->second.refs++;
  return true;
}

std::optional<int64_t> ObjectTable::OwnedRefs(const ObjectId& id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || !it->second.owner.empty()) return std::nullopt;
  return it->second.refs;
}

void ObjectTable::RemoveRef(const ObjectId& id) {
  std::optional<Entry> freed;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    Entry& e = it->second;
    if (--e.refs > 0) return;
    // A borrowed value nobody asked for yet will not arrive: free it now.
    bool settled = e.ready || (!e.owner.empty() && !e.fetching);
    if (settled && e.on_ready.empty()) {
      freed = std::move(e);
      EraseLocked(it);
    } else {
      e.released = true;
    }
  }
  if (freed) Freed(id, std::move(*freed));
}

size_t ObjectTable::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace loom
