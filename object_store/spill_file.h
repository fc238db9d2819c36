// object_store/spill_file.h
//
// Whole-object files for spilling: written once, read back once, removed.
//
//   if (WriteSpillFile(path, base + offset, size)) allocator.Free(offset);
//   ReadSpillFile(path, base + new_offset, size);
#ifndef LOOM_OBJECT_STORE_SPILL_FILE_H_
#define LOOM_OBJECT_STORE_SPILL_FILE_H_

#include <cstdint>
#include <string>

namespace loom {

// Writes `size` bytes to `path` (replacing it); false on any error, leaving
// no file behind.
bool WriteSpillFile(const std::string& path, const uint8_t* data,
                    uint64_t size);
// Reads exactly `size` bytes of `path` into `out`; false on any error.
bool ReadSpillFile(const std::string& path, uint8_t* out, uint64_t size);

}  // namespace loom

#endif  // LOOM_OBJECT_STORE_SPILL_FILE_H_
