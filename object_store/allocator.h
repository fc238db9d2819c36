// object_store/allocator.h
//
// Allocator: hands out 64-byte aligned blocks of an arena's offset space,
// best fit, coalescing freed neighbours. Freed blocks are reused as they
// are: their pages stay mapped, so steady-state writes hit warm memory.
//
//   Allocator alloc(1 << 30);
//   std::optional<uint64_t> off = alloc.Allocate(100 << 20);
//   alloc.Free(*off);
//   Allocator::Stats s = alloc.stats();  // used, free, largest free block
#ifndef LOOM_OBJECT_STORE_ALLOCATOR_H_
#define LOOM_OBJECT_STORE_ALLOCATOR_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>

#include "absl/container/flat_hash_map.h"

namespace loom {

inline constexpr uint64_t kAlignment = 64;

inline uint64_t AlignUp(uint64_t n) {
  return (n + kAlignment - 1) & ~(kAlignment - 1);
}

// Not thread-safe: owned by the store's event loop.
class Allocator {
 public:
  struct Stats {
    uint64_t capacity = 0;
    uint64_t used = 0;
    uint64_t free = 0;
    uint64_t largest_free = 0;
    uint64_t blocks = 0;  // live allocations
    // 1 - largest free block / all free space: 0 when free space is one run.
    double fragmentation() const {
      return free == 0 ? 0.0 : 1.0 - static_cast<double>(largest_free) / free;
    }
  };

  explicit Allocator(uint64_t capacity);

  // An offset for `size` bytes (rounded up to 64), or nullopt when no free
  // run is large enough. Size 0 takes one 64-byte block.
  std::optional<uint64_t> Allocate(uint64_t size);
  // Frees a block Allocate returned; false for any other offset.
  bool Free(uint64_t offset);
  // The rounded size of a live block, or 0.
  uint64_t SizeOf(uint64_t offset) const;
  Stats stats() const;

 private:
  void InsertFree(uint64_t offset, uint64_t size);
  void EraseFree(std::map<uint64_t, uint64_t>::iterator it);

  uint64_t capacity_;
  uint64_t used_ = 0;
  std::map<uint64_t, uint64_t> free_by_offset_;           // offset -> size
  std::set<std::pair<uint64_t, uint64_t>> free_by_size_;  // (size, offset)
  absl::flat_hash_map<uint64_t, uint64_t> live_;          // offset -> size
};

}  // namespace loom

#endif  // LOOM_OBJECT_STORE_ALLOCATOR_H_
