// LocalStore's spilling: primary copies written to files (spill_dir/<id>)
// and read back. Spills (past the watermark, or for a create, which waits
// for them) and restores for a get run their file IO through
// Options::run_io, off the store's thread; room for a restore is still
// made inline.
#include <unistd.h>

#include <cstring>
#include <memory>
#include <new>

#include "absl/strings/str_cat.h"
#include "object_store/local_store.h"
#include "object_store/spill_file.h"

namespace loom {

std::string LocalStore::SpillPath(const ObjectId& id) const {
  return options_.spill_dir + "/" + id.Hex();
}

void LocalStore::RunIo(std::function<std::function<void()>()> job) {
  if (options_.run_io) {
    options_.run_io(std::move(job));
  } else {
    job()();  // inline: the caller answers what is due after
  }
}

const ObjectId* LocalStore::SpillVictim() const {
  const ObjectId* victim = nullptr;
  uint64_t oldest = UINT64_MAX;
  for (const auto& [id, e] : objects_) {
    if (e.sealed && e.primary && !e.spilled && !e.spilling && !e.restoring &&
        !e.delete_pending && e.pins.empty() && e.last_used < oldest) {
      oldest = e.last_used;
      victim = &id;
    }
  }
  return victim;
}

bool LocalStore::SpillFor(uint64_t bytes) {
  bool spilled = false;
  while (allocator_.stats().largest_free < AlignUp(bytes)) {
    const ObjectId* victim = SpillVictim();
    if (victim == nullptr) break;
    ObjectId id = *victim;
    if (!Spill(id, objects_[id])) break;
    spilled = true;
  }
  return spilled;
}

bool LocalStore::StartSpillsFor(uint64_t bytes) {
  if (options_.base == nullptr || options_.spill_dir.empty()) return false;
  uint64_t need = AlignUp(bytes);
  // Free runs may not join up: with spills in flight their end is waited
  // for, and the create tried again (which may start more).
  while (spilling_bytes_ == 0 ||
         allocator_.stats().free + spilling_bytes_ < need) {
    const ObjectId* victim = SpillVictim();
    if (victim == nullptr) break;
    ObjectId id = *victim;
    StartSpill(id, objects_[id]);
  }
  return spilling_bytes_ > 0;
}

void LocalStore::SpillAboveWatermark() {
  if (options_.base == nullptr || options_.spill_dir.empty()) return;
  auto s = allocator_.stats();
  double limit = options_.spill_watermark * static_cast<double>(s.capacity);
  // Least recently used primaries go until use, less what is already on
  // its way out, is back under the mark.
  while (static_cast<double>(allocator_.stats().used - spilling_bytes_) >
         limit) {
    const ObjectId* victim = SpillVictim();
    if (victim == nullptr) return;
    ObjectId id = *victim;
    StartSpill(id, objects_[id]);
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

void LocalStore::StartSpill(const ObjectId& id, Entry& e) {
  uint64_t size = e.info.data_size + e.info.metadata_size;
  e.spilling = true;
  spilling_bytes_ += AlignUp(size);
  // The block stays allocated (and its bytes immutable) until FinishSpill.
  RunIo([this, id, path = SpillPath(id), src = options_.base + e.info.offset,
         size] {
    absl::Status written = WriteSpillFile(path, src, size);
    return [this, id, written] { FinishSpill(id, written); };
  });
}

void LocalStore::FinishSpill(const ObjectId& id, const absl::Status& written) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;  // cannot happen: Free waits for it
  Entry& e = it->second;
  uint64_t size = e.info.data_size + e.info.metadata_size;
  e.spilling = false;
  spilling_bytes_ -= AlignUp(size);
  if (written.ok() && (e.delete_pending || !e.pins.empty())) {
    // Deleted meanwhile, or read again: the copy in the arena stays (or
    // goes with the object), the file is not needed.
    unlink(SpillPath(id).c_str());
  } else if (written.ok()) {
    FreeBlock(e.info.offset, size);
    e.spilled = true;
    spilled_bytes_ += size;
    ++spilled_objects_;
    spill_error_ = absl::OkStatus();
  } else {
    spill_error_ = written;  // the next full store's error says why
    spill_failed_ = true;
  }
  if (e.delete_pending && e.pins.empty()) Free(id);
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

void LocalStore::StartRestore(const ObjectId& id, Entry& e) {
  uint64_t size = e.info.data_size + e.info.metadata_size;
  bool background = static_cast<bool>(options_.run_io);
  // e is not a spill candidate.
  std::optional<uint64_t> offset = Allocate(size, /*spill=*/!background);
  if (offset) return ReadInBackground(id, e, *offset);
  if (background && StartSpillsFor(size)) {
    e.restoring = true;  // its get waits, and a delete waits for it
    restores_.push_back(id);
    return;
  }
  if (spill_error_.code() == absl::StatusCode::kResourceExhausted) {
    SwapIn(id, e);
  }
}

void LocalStore::ReadInBackground(const ObjectId& id, Entry& e,
                                  uint64_t offset) {
  uint64_t size = e.info.data_size + e.info.metadata_size;
  e.restoring = true;
  RunIo([this, id, path = SpillPath(id), dst = options_.base + offset, size,
         at = offset] {
    bool read = ReadSpillFile(path, dst, size);
    if (read) unlink(path.c_str());
    return [this, id, at, read] { FinishRestore(id, at, read); };
  });
}

void LocalStore::RetryRestores(bool spill_failed) {
  while (!restores_.empty()) {
    ObjectId id = restores_.front();
    auto it = objects_.find(id);
    if (it == objects_.end()) {  // cannot happen: Free waits for it
      restores_.pop_front();
      continue;
    }
    Entry& e = it->second;
    uint64_t size = e.info.data_size + e.info.metadata_size;
    if (e.delete_pending && e.pins.empty()) {
      restores_.pop_front();
      e.restoring = false;
      Free(id);
      continue;
    }
    if (std::optional<uint64_t> offset = Allocate(size, /*spill=*/false)) {
      restores_.pop_front();
      ReadInBackground(id, e, *offset);
      continue;
    }
    if (!spill_failed && StartSpillsFor(size)) return;  // waits for those
    spill_failed = false;
    restores_.pop_front();
    e.restoring = false;
    if (spill_error_.code() == absl::StatusCode::kResourceExhausted) {
      SwapIn(id, e);
    }
  }
}

void LocalStore::FinishRestore(const ObjectId& id, uint64_t offset, bool read) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;  // cannot happen: Free waits for it
  Entry& e = it->second;
  uint64_t size = e.info.data_size + e.info.metadata_size;
  e.restoring = false;
  if (read) {
    e.info.offset = offset;
    e.spilled = false;
    spilled_bytes_ -= size;
    --spilled_objects_;
  } else {
    FreeBlock(offset, size);  // the get answers it as missing
  }
  if (e.delete_pending && e.pins.empty()) Free(id);
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

}  // namespace loom
