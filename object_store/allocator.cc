#include "object_store/allocator.h"

namespace loom {

Allocator::Allocator(uint64_t capacity)
    : capacity_(capacity & ~(kAlignment - 1)) {
  if (capacity_ > 0) InsertFree(0, capacity_);
}

void Allocator::InsertFree(uint64_t offset, uint64_t size) {
  free_by_offset_[offset] = size;
  free_by_size_.insert({size, offset});
}

void Allocator::EraseFree(std::map<uint64_t, uint64_t>::iterator it) {
  free_by_size_.erase({it->second, it->first});
  free_by_offset_.erase(it);
}

std::optional<uint64_t> Allocator::Allocate(uint64_t size) {
  uint64_t need = AlignUp(size == 0 ? 1 : size);
  if (need < size) return std::nullopt;  // overflow
  // Best fit; among equal sizes the lowest offset (warm, low memory first).
  auto fit = free_by_size_.lower_bound({need, 0});
  if (fit == free_by_size_.end()) return std::nullopt;
  uint64_t offset = fit->second, block = fit->first;
  EraseFree(free_by_offset_.find(offset));
  if (block > need) InsertFree(offset + need, block - need);
  live_[offset] = need;
  used_ += need;
  return offset;
}

bool Allocator::Free(uint64_t offset) {
  auto live = live_.find(offset);
  if (live == live_.end()) return false;
  uint64_t size = live->second;
  live_.erase(live);
  used_ -= size;
  // Coalesce with the free runs on either side.
  auto next = free_by_offset_.lower_bound(offset);
  if (next != free_by_offset_.end() && offset + size == next->first) {
    size += next->second;
    EraseFree(next);
  }
  auto prev = free_by_offset_.lower_bound(offset);
  if (prev != free_by_offset_.begin()) {
    --prev;
    if (prev->first + prev->second == offset) {
      offset = prev->first;
      size += prev->second;
      EraseFree(prev);
    }
  }
  InsertFree(offset, size);
  return true;
}

uint64_t Allocator::SizeOf(uint64_t offset) const {
  auto it = live_.find(offset);
  return it == live_.end() ? 0 : it->second;
}

Allocator::Stats Allocator::stats() const {
  Stats s;
  s.capacity = capacity_;
  s.used = used_;
  s.free = capacity_ - used_;
  s.largest_free = free_by_size_.empty() ? 0 : free_by_size_.rbegin()->first;
  s.blocks = live_.size();
  return s;
}

}  // namespace loom
