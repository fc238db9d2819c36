// object_store/arena.h
//
// Arena: one node's shared memory, a memfd mapped MAP_SHARED. The store
// creates it; every client maps the same descriptor (received once over the
// store's unix socket) and reads and writes objects by offset, without
// copies.
//
//   auto arena = Arena::Create(1 << 30);          // the store
//   auto view = Arena::Map(fd, size);             // a client, fd from
//   SCM_RIGHTS std::memcpy(view->base() + offset, data, n);
#ifndef LOOM_OBJECT_STORE_ARENA_H_
#define LOOM_OBJECT_STORE_ARENA_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

namespace loom {

// Thread-safe (immutable after creation; the bytes are the users' concern).
class Arena {
 public:
  static absl::StatusOr<std::unique_ptr<Arena>> Create(uint64_t size);
  // Maps an arena another process created; takes ownership of `fd`.
  static absl::StatusOr<std::unique_ptr<Arena>> Map(int fd, uint64_t size);
  ~Arena();

  uint8_t* base() const { return base_; }
  uint64_t size() const { return size_; }
  int fd() const { return fd_; }
  bool Contains(const void* p, uint64_t n) const {
    auto* b = static_cast<const uint8_t*>(p);
    return b >= base_ && n <= size_ &&
           b - base_ <= static_cast<int64_t>(size_ - n);
  }

 private:
  Arena(int fd, uint8_t* base, uint64_t size)
      : fd_(fd), base_(base), size_(size) {}
  int fd_;
  uint8_t* base_;
  uint64_t size_;
};

}  // namespace loom

#endif  // LOOM_OBJECT_STORE_ARENA_H_
