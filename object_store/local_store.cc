#include "object_store/local_store.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

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

void LocalStore::Create(const ObjectId& id, uint64_t data_size,
                        uint64_t metadata_size, ClientId creator, bool primary,
                        std::string owner, CreateCallback done) {
  PendingCreate c{id,      data_size,        metadata_size,  creator,
                  primary, std::move(owner), std::move(done)};
  // Behind those already waiting: room made for them is theirs first.
  if (!creates_.empty() || !TryCreate(c, /*may_wait=*/true)) {
    creates_.push_back(std::move(c));
  }
}

bool LocalStore::TryCreate(PendingCreate& c, bool may_wait) {
  if (objects_.contains(c.id)) {
    c.done(absl::AlreadyExistsError(
        absl::StrCat("object ", c.id.Hex(), " exists")));
    return true;
  }
  uint64_t total = c.data_size + c.metadata_size;
  if (total < c.data_size || total > allocator_.stats().capacity) {
    c.done(absl::ResourceExhaustedError(
        absl::StrCat("object of ", total, " bytes can never fit in a store of ",
                     allocator_.stats().capacity, " bytes")));
    return true;
  }
  if (auto s = CheckJobLimit(c, total); !s.ok()) {
    c.done(s);
    return true;
  }
  // With IO threads, spills for a create run there too.
  bool background = static_cast<bool>(options_.run_io);
  std::optional<uint64_t> offset = Allocate(total, /*spill=*/!background);
  if (!offset && background && may_wait && StartSpillsFor(total)) {
    return false;
  }
  if (!offset) {
    auto s = allocator_.stats();
    c.done(absl::ResourceExhaustedError(
        absl::StrCat("object store full: ", total, " bytes requested, ", s.free,
                     " free of ", s.capacity, " (largest free run ",
                     s.largest_free, ")", SpillFailure())));
    return true;
  }
  Entry& e = objects_[c.id];
  e.info = ObjectInfo{*offset, c.data_size, c.metadata_size};
  e.primary = c.primary;
  e.creator = c.creator;
  e.owner = std::move(c.owner);
  if (c.primary) {
    job_bytes_[c.id.Task().Job()] += total;
    ++job_bytes_version_;
  }
  c.done(e.info);
  return true;
}

absl::Status LocalStore::CheckJobLimit(const PendingCreate& c,
                                       uint64_t bytes) const {
  if (!c.primary || job_limits_.empty()) return absl::OkStatus();
  JobId job = c.id.Task().Job();
  auto limit = job_limits_.find(job);
  if (limit == job_limits_.end()) return absl::OkStatus();
  auto held = job_bytes_.find(job);
  uint64_t used = held == job_bytes_.end() ? 0 : held->second;
  if (used + bytes <= limit->second) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "job ", job.Hex(), " is at its object-store quota: its objects hold ",
      used, " bytes on this node, where it may hold ", limit->second,
      " (--max-object-store-bytes, less what it holds on other nodes); a new "
      "object of ",
      bytes, " bytes does not fit. Drop references to free some."));
}

void LocalStore::RetryCreates(bool spill_failed) {
  while (!creates_.empty()) {
    // After a failed spill the first waiting create fails with its error
    // (each failure answers one: a broken disk is not retried forever).
    bool may_wait = !spill_failed;
    spill_failed = false;
    if (!TryCreate(creates_.front(), may_wait)) return;
    creates_.pop_front();
  }
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
  AnswerDue();
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

std::optional<uint64_t> LocalStore::Allocate(uint64_t bytes, bool spill) {
  if (spill) spill_error_ = absl::OkStatus();
  std::optional<uint64_t> offset = allocator_.Allocate(bytes);
  if (!offset && EvictFor(bytes)) offset = allocator_.Allocate(bytes);
  if (!offset && spill && SpillFor(bytes)) offset = allocator_.Allocate(bytes);
  // Best fit takes warm blocks first, roughly: they were freed whole.
  if (offset) resident_free_ -= std::min(resident_free_, AlignUp(bytes));
  return offset;
}

void LocalStore::Free(const ObjectId& id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  if (it->second.spilling || it->second.restoring) {
    it->second.delete_pending = true;  // once its file IO is done
    return;
  }
  if (it->second.in_lru) lru_.erase(it->second.lru);
  if (!it->second.pins.empty()) --pinned_;
  if (it->second.primary) {
    auto held = job_bytes_.find(id.Task().Job());
    uint64_t size = it->second.info.data_size + it->second.info.metadata_size;
    if (held != job_bytes_.end() && (held->second -= size) == 0) {
      job_bytes_.erase(held);
    }
    ++job_bytes_version_;
  }
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
  waiters_.push_back(
      Waiter{next_waiter_++, ids, client, deadline, std::move(done)});
  TryAnswer(std::prev(waiters_.end()), /*expired=*/false);
}

void LocalStore::TryAnswer(std::list<Waiter>::iterator it, bool expired) {
  Waiter& w = *it;
  for (const auto& id : w.ids) {
    if (expired) break;
    auto o = objects_.find(id);
    if (o == objects_.end() || !o->second.sealed) return;  // not due yet
  }
  // Due: spilled objects come back first (once per get).
  bool restoring = false;
  for (const auto& id : w.ids) {
    auto o = objects_.find(id);
    if (o == objects_.end() || !o->second.sealed || o->second.delete_pending) {
      continue;
    }
    Entry& e = o->second;
    if (e.spilled && !e.restoring && !w.restored) StartRestore(id, e);
    restoring = restoring || e.restoring;
  }
  w.restored = true;
  if (restoring) {
    w.expired = w.expired || expired;
    return;
  }
  Waiter due = std::move(w);
  waiters_.erase(it);
  Answer(due);
}

void LocalStore::AnswerDue() {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    auto next = std::next(it);
    TryAnswer(it, it->expired);
    it = next;
  }
}

void LocalStore::Complete(const std::function<void()>& done) {
  done();
  // Restores first: their gets want what is already there.
  bool spill_failed = std::exchange(spill_failed_, false);
  RetryRestores(spill_failed);
  RetryCreates(spill_failed);
  AnswerDue();
}

void LocalStore::Answer(Waiter& w) {
  std::vector<std::optional<ObjectInfo>> out;
  out.reserve(w.ids.size());
  for (const auto& id : w.ids) {
    auto it = objects_.find(id);
    // Spilled still: no room to bring it back, or its file unreadable.
    if (it == objects_.end() || !it->second.sealed ||
        it->second.delete_pending || it->second.spilled) {
      out.push_back(std::nullopt);
      continue;
    }
    if (it->second.pins.empty()) ++pinned_;
    it->second.pins[w.client]++;
    Touch(id, it->second);
    out.push_back(it->second.info);
  }
  w.done(std::move(out));
}

void LocalStore::ExpireWaiters(absl::Time now) {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    auto next = std::next(it);
    if (it->deadline <= now && !it->expired) TryAnswer(it, /*expired=*/true);
    it = next;
  }
}

std::optional<absl::Time> LocalStore::NextDeadline() const {
  std::optional<absl::Time> next;
  for (const auto& w : waiters_) {
    if (w.expired) continue;  // waits for its restores, not for time
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
  creates_.erase(std::remove_if(creates_.begin(), creates_.end(),
                                [client](const PendingCreate& c) {
                                  return c.creator == client;
                                }),
                 creates_.end());
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
