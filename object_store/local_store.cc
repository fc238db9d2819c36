#include "object_store/local_store.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>

#include "absl/strings/str_cat.h"
#include "object_store/spill_file.h"

namespace loom {

LocalStore::LocalStore(Options options)
    : options_(options),
      allocator_(options.capacity),
      warm_reserve_(options.warm_reserve > 0
                        ? options.warm_reserve
                        : std::min<uint64_t>(options.capacity / 4, 512 << 20)) {
}

void LocalStore::FreeBlock(uint64_t offset, uint64_t size) {
  allocator_.Free(offset);
  if (options_.base == nullptr) return;
  resident_free_ += AlignUp(size);
  if (resident_free_ <= warm_reserve_) return;
  // Past the reserve: the block's whole pages go back to the kernel (the
  // arena is a memfd: MADV_REMOVE frees its pages; a later put there
  // faults in zeroed ones).
  static const uint64_t kPage = sysconf(_SC_PAGESIZE);
  uint64_t first = (offset + kPage - 1) / kPage * kPage;
  uint64_t end = (offset + size) / kPage * kPage;
  if (end <= first) return;
  if (madvise(options_.base + first, end - first, MADV_REMOVE) == 0) {
    resident_free_ -= std::min(resident_free_, end - first);
  }
}

absl::StatusOr<ObjectInfo> LocalStore::Create(const ObjectId& id,
                                              uint64_t data_size,
                                              uint64_t metadata_size,
                                              ClientId creator, bool primary,
                                              std::string owner) {
  if (objects_.contains(id)) {
    return absl::AlreadyExistsError(
        absl::StrCat("object ", id.Hex(), " exists"));
  }
  uint64_t total = data_size + metadata_size;
  if (total < data_size || total > allocator_.stats().capacity) {
    return absl::ResourceExhaustedError(
        absl::StrCat("object of ", total, " bytes can never fit in a store of ",
                     allocator_.stats().capacity, " bytes"));
  }
  std::optional<uint64_t> offset = Allocate(total);
  if (!offset) {
    auto s = allocator_.stats();
    return absl::ResourceExhaustedError(
        absl::StrCat("object store full: ", total, " bytes requested, ", s.free,
                     " free of ", s.capacity, " (largest free run ",
                     s.largest_free, ")", SpillFailure()));
  }
  Entry& e = objects_[id];
  e.info = ObjectInfo{*offset, data_size, metadata_size};
  e.primary = primary;
  e.creator = creator;
  e.owner = std::move(owner);
  return e.info;
}

absl::Status LocalStore::Seal(const ObjectId& id, ClientId client) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return absl::NotFoundError("seal: unknown object");
  if (it->second.sealed) return absl::FailedPreconditionError("already sealed");
  if (it->second.creator != client) {
    return absl::PermissionDeniedError("only the creator may seal an object");
  }
  it->second.sealed = true;
  Touch(id, it->second);
  OnSealed(id);
  SpillAboveWatermark();
  return absl::OkStatus();
}

absl::Status LocalStore::Abort(const ObjectId& id, ClientId client) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return absl::NotFoundError("abort: unknown object");
  if (it->second.sealed || it->second.creator != client) {
    return absl::FailedPreconditionError(
        "only an unsealed object's creator may abort it");
  }
  Free(id);
  return absl::OkStatus();
}

void LocalStore::Touch(const ObjectId& id, Entry& e) {
  e.last_used = ++use_clock_;
  if (e.in_lru) {
    lru_.erase(e.lru);
    e.in_lru = false;
  }
  if (e.sealed && !e.primary && e.pins.empty()) {
    e.lru = lru_.insert(lru_.end(), id);
    e.in_lru = true;
  }
}

bool LocalStore::EvictFor(uint64_t bytes) {
  bool evicted = false;
  while (!lru_.empty() && allocator_.stats().largest_free < AlignUp(bytes)) {
    ObjectId victim = lru_.front();
    Free(victim);
    if (options_.on_evict) options_.on_evict(victim);
    ++evicted_;
    evicted = true;
  }
  return evicted;
}

std::optional<uint64_t> LocalStore::Allocate(uint64_t bytes) {
  spill_error_ = absl::OkStatus();
  std::optional<uint64_t> offset = allocator_.Allocate(bytes);
  if (!offset && EvictFor(bytes)) offset = allocator_.Allocate(bytes);
  if (!offset && SpillFor(bytes)) offset = allocator_.Allocate(bytes);
  // Best fit takes warm blocks first, roughly: they were freed whole.
  if (offset) resident_free_ -= std::min(resident_free_, AlignUp(bytes));
  return offset;
}

std::string LocalStore::SpillPath(const ObjectId& id) const {
  return options_.spill_dir + "/" + id.Hex();
}

bool LocalStore::SpillFor(uint64_t bytes) {
  bool spilled = false;
  while (allocator_.stats().largest_free < AlignUp(bytes)) {
    const ObjectId* victim = nullptr;
    uint64_t oldest = UINT64_MAX;
    for (auto& [id, e] : objects_) {
      if (e.sealed && e.primary && !e.spilled && e.pins.empty() &&
          e.last_used < oldest) {
        oldest = e.last_used;
        victim = &id;
      }
    }
    if (victim == nullptr) break;
    ObjectId id = *victim;
    if (!Spill(id, objects_[id])) break;
    spilled = true;
  }
  return spilled;
}

void LocalStore::SpillAboveWatermark() {
  auto s = allocator_.stats();
  double limit = options_.spill_watermark * static_cast<double>(s.capacity);
  if (options_.base == nullptr || static_cast<double>(s.used) <= limit) return;
  // Spill least recently used primaries until use is back under the mark.
  while (static_cast<double>(allocator_.stats().used) > limit) {
    uint64_t before = allocator_.stats().used;
    if (!SpillFor(allocator_.stats().largest_free + kAlignment) ||
        allocator_.stats().used >= before) {
      return;
    }
  }
}

bool LocalStore::Spill(const ObjectId& id, Entry& e) {
  if (options_.base == nullptr || options_.spill_dir.empty()) return false;
  uint64_t size = e.info.data_size + e.info.metadata_size;
  absl::Status written =
      WriteSpillFile(SpillPath(id), options_.base + e.info.offset, size);
  if (!written.ok()) {
    spill_error_ = written;
    return false;
  }
  FreeBlock(e.info.offset, size);
  e.spilled = true;
  spilled_bytes_ += size;
  ++spilled_objects_;
  if (displaced_ != nullptr) displaced_->push_back(id);
  return true;
}

std::string LocalStore::SpillFailure() const {
  if (spill_error_.ok()) return "";
  std::optional<uint64_t> free = FreeDiskBytes(options_.spill_dir);
  return absl::StrCat(
      "; cannot spill to make room: ",
      spill_error_.code() == absl::StatusCode::kResourceExhausted
          ? "the spill directory is full, "
          : "",
      options_.spill_dir, " has ",
      free ? absl::StrCat(*free, " bytes")
           : std::string("an unknown number of bytes"),
      " free (", spill_error_.message(), ")");
}

bool LocalStore::Restore(const ObjectId& id, Entry& e) {
  uint64_t size = e.info.data_size + e.info.metadata_size;
  std::optional<uint64_t> offset = Allocate(size);  // e is not a candidate
  if (!offset) {
    return spill_error_.code() == absl::StatusCode::kResourceExhausted &&
           SwapIn(id, e);
  }
  return ReadBack(id, e, *offset);
}

bool LocalStore::ReadBack(const ObjectId& id, Entry& e, uint64_t offset) {
  uint64_t size = e.info.data_size + e.info.metadata_size;
  if (!ReadSpillFile(SpillPath(id), options_.base + offset, size)) {
    FreeBlock(offset, size);
    return false;
  }
  unlink(SpillPath(id).c_str());
  e.info.offset = offset;
  e.spilled = false;
  spilled_bytes_ -= size;
  --spilled_objects_;
  return true;
}

bool LocalStore::SwapIn(const ObjectId& id, Entry& e) {
  uint64_t size = e.info.data_size + e.info.metadata_size;
  std::unique_ptr<uint8_t[]> bytes(new (std::nothrow) uint8_t[size]);
  if (!bytes || !ReadSpillFile(SpillPath(id), bytes.get(), size)) return false;
  unlink(SpillPath(id).c_str());
  std::vector<ObjectId> displaced;
  displaced_ = &displaced;
  std::optional<uint64_t> offset = Allocate(size);
  displaced_ = nullptr;
  if (offset) {
    std::memcpy(options_.base + *offset, bytes.get(), size);
    e.info.offset = *offset;
    e.spilled = false;
    spilled_bytes_ -= size;
    --spilled_objects_;
    return true;
  }
  // Still no run large enough: the displaced objects go back where their
  // bytes were (still free: nothing else ran), which gives their disk
  // space back for this object's file.
  for (auto it = displaced.rbegin(); it != displaced.rend(); ++it) {
    Entry& d = objects_[*it];
    std::optional<uint64_t> at =
        allocator_.Allocate(d.info.data_size + d.info.metadata_size);
    if (at) ReadBack(*it, d, *at);
  }
  spill_error_ = WriteSpillFile(SpillPath(id), bytes.get(), size);
  return false;
}

void LocalStore::Free(const ObjectId& id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  if (it->second.in_lru) lru_.erase(it->second.lru);
  if (!it->second.pins.empty()) --pinned_;
  if (it->second.spilled) {
    unlink(SpillPath(id).c_str());
    spilled_bytes_ -= it->second.info.data_size + it->second.info.metadata_size;
    --spilled_objects_;
  } else {
    FreeBlock(it->second.info.offset,
              it->second.info.data_size + it->second.info.metadata_size);
  }
  objects_.erase(it);
}

void LocalStore::Get(const std::vector<ObjectId>& ids, ClientId client,
                     absl::Time deadline, GetCallback done) {
  Waiter w{next_waiter_++, ids, client, deadline, std::move(done)};
  bool all = true;
  for (const auto& id : ids) {
    auto it = objects_.find(id);
    if (it == objects_.end() || !it->second.sealed) all = false;
  }
  if (all) return Answer(w);
  waiters_.push_back(std::move(w));
}

void LocalStore::Answer(Waiter& w) {
  std::vector<std::optional<ObjectInfo>> out;
  out.reserve(w.ids.size());
  for (const auto& id : w.ids) {
    auto it = objects_.find(id);
    if (it == objects_.end() || !it->second.sealed ||
        it->second.delete_pending) {
      out.push_back(std::nullopt);
      continue;
    }
    if (it->second.spilled && !Restore(id, it->second)) {
      out.push_back(std::nullopt);  // no room to bring it back now
      continue;
    }
    if (it->second.pins.empty()) ++pinned_;
    it->second.pins[w.client]++;
    Touch(id, it->second);
    out.push_back(it->second.info);
  }
  w.done(std::move(out));
}

void LocalStore::OnSealed(const ObjectId& id) {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    bool all = true;
    for (const auto& wid : it->ids) {
      auto o = objects_.find(wid);
      if (o == objects_.end() || !o->second.sealed) all = false;
    }
    if (all) {
      Waiter w = std::move(*it);
      it = waiters_.erase(it);
      Answer(w);
    } else {
      ++it;
    }
  }
}

void LocalStore::ExpireWaiters(absl::Time now) {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->deadline <= now) {
      Waiter w = std::move(*it);
      it = waiters_.erase(it);
      Answer(w);
    } else {
      ++it;
    }
  }
}

std::optional<absl::Time> LocalStore::NextDeadline() const {
  std::optional<absl::Time> next;
  for (const auto& w : waiters_) {
    if (!next || w.deadline < *next) next = w.deadline;
  }
  return next;
}

absl::Status LocalStore::Release(const ObjectId& id, ClientId client) {
  auto it = objects_.find(id);
  if (it == objects_.end())
    return absl::NotFoundError("release: unknown object");
  Entry& e = it->second;
  auto pin = e.pins.find(client);
  if (pin == e.pins.end()) {
    return absl::FailedPreconditionError(
        "release: object not pinned by this client");
  }
  if (--pin->second == 0) {
    e.pins.erase(pin);
    if (e.pins.empty()) --pinned_;
  }
  if (e.pins.empty() && e.delete_pending) {
    Free(id);
  } else {
    Touch(id, e);
  }
  return absl::OkStatus();
}

absl::Status LocalStore::Delete(const ObjectId& id) {
  auto it = objects_.find(id);
  if (it == objects_.end())
    return absl::NotFoundError("delete: unknown object");
  if (it->second.pins.empty()) {
    Free(id);
  } else {
    it->second.delete_pending = true;
  }
  return absl::OkStatus();
}

std::vector<ObjectId> LocalStore::DeleteOwnedBy(const std::string& owner,
                                                const JobId& job) {
  std::vector<ObjectId> owned;
  if (owner.empty()) return owned;
  // The job too: an address a dead driver had may be a new process's now.
  for (const auto& [id, e] : objects_) {
    if (e.sealed && e.owner == owner && id.Task().Job() == job)
      owned.push_back(id);
  }
  for (const auto& id : owned) Delete(id).IgnoreError();
  return owned;
}

bool LocalStore::Contains(const ObjectId& id) const {
  auto it = objects_.find(id);
  return it != objects_.end() && it->second.sealed;
}

void LocalStore::Disconnect(ClientId client) {
  std::vector<ObjectId> abandoned, released;
  for (auto& [id, e] : objects_) {
    if (!e.sealed && e.creator == client) abandoned.push_back(id);
    if (e.pins.erase(client) > 0) {
      released.push_back(id);
      if (e.pins.empty()) --pinned_;
    }
  }
  for (const auto& id : abandoned) Free(id);
  for (const auto& id : released) {
    auto it = objects_.find(id);
    if (it == objects_.end()) continue;
    if (it->second.pins.empty() && it->second.delete_pending) {
      Free(id);
    } else {
      Touch(id, it->second);
    }
  }
  waiters_.remove_if([client](const Waiter& w) { return w.client == client; });
}

std::vector<LocalStore::Summary> LocalStore::Largest(size_t n) const {
  std::vector<Summary> all;
  for (const auto& [id, e] : objects_) {
    if (!e.sealed) continue;
    all.push_back(Summary{id, e.info.data_size + e.info.metadata_size, e.owner,
                          e.primary, !e.pins.empty()});
  }
  size_t k = std::min(n, all.size());
  std::partial_sort(
      all.begin(), all.begin() + k, all.end(),
      [](const Summary& a, const Summary& b) { return a.size > b.size; });
  all.resize(k);
  return all;
}

LocalStore::Stats LocalStore::stats() const {
  auto a = allocator_.stats();
  Stats s;
  s.capacity = a.capacity;
  s.used = a.used;
  s.objects = objects_.size();
  s.pinned = pinned_;
  s.evicted = evicted_;
  s.spilled_bytes = spilled_bytes_;
  s.spilled_objects = spilled_objects_;
  s.fragmentation = a.fragmentation();
  return s;
}

}  // namespace loom
