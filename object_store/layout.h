// object_store/layout.h
//
// The one layout of an object's bytes, for C++ and Python alike:
//
//   [header: "LOOM" | format | metadata size | buffer count]   4 × u32, LE
//   [buffer table: count × (offset u64, size u64)]             from the start
//   [metadata]
//   [padding to 64] [buffer 0] [padding to 64] [buffer 1] ...
//
// The store places objects 64-byte aligned, so every buffer is 64-byte
// aligned in memory: a reader can hand it out as an array in place. C++
// values are one msgpack buffer; Buffer and Tensor one raw buffer with their
// description as metadata; Python values (pickle protocol 5) the pickle as
// metadata and each out-of-band buffer as a buffer.
//
//   uint64_t n = LayoutSize(meta.size(), {data.size()});
//   auto dst = store.Create(id, n, 0);
//   std::vector<uint8_t*> at = WriteLayout(*dst, Format::kRaw, meta, {size});
//   std::memcpy(at[0], data, size);
//   auto view = ParseLayout(ptr, n);  // view->buffers[0] points into ptr
#ifndef LOOM_OBJECT_STORE_LAYOUT_H_
#define LOOM_OBJECT_STORE_LAYOUT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace loom {

enum class Format : uint32_t {
  kMsgpack = 1,  // a C++ value: one buffer of msgpack bytes
  kRaw = 2,      // a Buffer or Tensor: one buffer; metadata describes it
  kPickle5 = 3,  // a Python value: the pickle in metadata, buffers out of band
};

struct LayoutView {
  Format format;
  std::string_view metadata;
  std::vector<std::string_view> buffers;  // each 64-byte aligned in the object
};

// Bytes an object with this metadata and these buffers takes.
uint64_t LayoutSize(uint64_t metadata_size,
                    const std::vector<uint64_t>& buffer_sizes);
// Writes the header, table and metadata at `dst` (64-byte aligned, with
// LayoutSize bytes); returns where each buffer's bytes go.
std::vector<uint8_t*> WriteLayout(uint8_t* dst, Format format,
                                  std::string_view metadata,
                                  const std::vector<uint64_t>& buffer_sizes);
// The whole object in a string (inline values, tests).
std::string EncodeLayout(Format format, std::string_view metadata,
                         const std::vector<std::string_view>& buffers);
// Checks every size and offset against `size`; views point into `data`.
absl::StatusOr<LayoutView> ParseLayout(const uint8_t* data, uint64_t size);
// The same, requiring `format` and exactly one buffer.
absl::StatusOr<LayoutView> ParseSingleBuffer(const uint8_t* data, uint64_t size,
                                             Format format);

}  // namespace loom

#endif  // LOOM_OBJECT_STORE_LAYOUT_H_
