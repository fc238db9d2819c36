// object_store/spill_file.h
//
// Whole-object files for spilling: written once, read back once, removed.
//
//   if (WriteSpillFile(path, base + offset, size).ok()) allocator.Free(offset);
//   ReadSpillFile(path, base + new_offset, size);
#ifndef LOOM_OBJECT_STORE_SPILL_FILE_H_
#define LOOM_OBJECT_STORE_SPILL_FILE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"

namespace loom {

// Writes `size` bytes to `path` (replacing it). On any error leaves no file
// behind and says why (ResourceExhausted when the disk is full).
absl::Status WriteSpillFile(const std::string& path, const uint8_t* data,
                            uint64_t size);
// Bytes free to an unprivileged writer on the filesystem holding `dir`, or
// nullopt when it cannot be asked.
std::optional<uint64_t> FreeDiskBytes(const std::string& dir);
// Reads exactly `size` bytes of `path` into `out`; false on any error.
bool ReadSpillFile(const std::string& path, uint8_t* out, uint64_t size);

}  // namespace loom

#endif  // LOOM_OBJECT_STORE_SPILL_FILE_H_
