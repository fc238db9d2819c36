// src/common/memory_trim.h
//
// MemoryTrim: gives the allocator's free pages back to the kernel once
// enough have piled up. glibc keeps what a thread freed in that thread's
// arena, and gRPC's threads allocate and free per call: creating 500
// actors left the head 21 MiB more resident, 14 MiB of it memory it had
// freed (42 KiB per actor, 15 once trimmed). The daemons call Maybe from
// their periodic ticks, which an idle daemon runs only when it wakes anyway.
//
//   MemoryTrim trim;
//   trim.Maybe(absl::Now());  // from a tick
#ifndef LOOM_COMMON_MEMORY_TRIM_H_
#define LOOM_COMMON_MEMORY_TRIM_H_

#include <cstddef>

#include "absl/time/time.h"

namespace loom {

// Not thread-safe: call from one thread (a loop's tick).
class MemoryTrim {
 public:
  struct Options {
    // Looked at no more often than this (counting the free memory walks
    // the arenas' free lists).
    absl::Duration period = absl::Seconds(5);
    // Trimmed when the arenas hold more free bytes than this.
    size_t free_bytes = 4 << 20;
  };
  MemoryTrim() : MemoryTrim(Options{}) {}
  explicit MemoryTrim(Options options) : options_(options) {}

  // Trims if a period has passed since the last look and enough is free;
  // whether it trimmed.
  bool Maybe(absl::Time now);

 private:
  Options options_;
  absl::Time last_ = absl::InfinitePast();
};

}  // namespace loom

#endif  // LOOM_COMMON_MEMORY_TRIM_H_
