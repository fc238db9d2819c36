#include "object_store/layout.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace loom {
namespace {

constexpr uint32_t kMagic = 0x4d4f4f4c;  // "LOOM" little-endian
constexpr uint64_t kHeader = 16;
constexpr uint64_t kEntry = 16;
constexpr uint64_t kAlign = 64;
// Keeps a hostile count from making the table itself overflow.
constexpr uint64_t kMaxBuffers = uint64_t{1} << 24;

uint64_t Align(uint64_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }

void Put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
void Put64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t Get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t Get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

absl::Status Bad(const std::string& why) {
  return absl::DataLossError("object bytes are not a Loom object: " + why);
}

}  // namespace

uint64_t LayoutSize(uint64_t metadata_size,
                    const std::vector<uint64_t>& buffer_sizes) {
  uint64_t n = kHeader + kEntry * buffer_sizes.size() + metadata_size;
  for (uint64_t b : buffer_sizes) n = Align(n) + b;
  return n;
}

std::vector<uint8_t*> WriteLayout(uint8_t* dst, Format format,
                                  std::string_view metadata,
                                  const std::vector<uint64_t>& buffer_sizes) {
  Put32(dst, kMagic);
  Put32(dst + 4, static_cast<uint32_t>(format));
  Put32(dst + 8, static_cast<uint32_t>(metadata.size()));
  Put32(dst + 12, static_cast<uint32_t>(buffer_sizes.size()));
  uint64_t at = kHeader + kEntry * buffer_sizes.size();
  std::memcpy(dst + at, metadata.data(), metadata.size());
  at += metadata.size();
  std::vector<uint8_t*> out;
  out.reserve(buffer_sizes.size());
  for (size_t i = 0; i < buffer_sizes.size(); ++i) {
    uint64_t start = Align(at);
    std::memset(dst + at, 0, start - at);
    Put64(dst + kHeader + kEntry * i, start);
    Put64(dst + kHeader + kEntry * i + 8, buffer_sizes[i]);
    out.push_back(dst + start);
    at = start + buffer_sizes[i];
  }
  return out;
}

std::string EncodeLayout(Format format, std::string_view metadata,
                         const std::vector<std::string_view>& buffers) {
  std::vector<uint64_t> sizes;
  for (auto b : buffers) sizes.push_back(b.size());
  std::string out(LayoutSize(metadata.size(), sizes), '\0');
  auto at = WriteLayout(reinterpret_cast<uint8_t*>(out.data()), format,
                        metadata, sizes);
  for (size_t i = 0; i < buffers.size(); ++i) {
    std::memcpy(at[i], buffers[i].data(), buffers[i].size());
  }
  return out;
}

absl::StatusOr<LayoutView> ParseLayout(const uint8_t* data, uint64_t size) {
  if (size < kHeader) return Bad("shorter than the header");
  if (Get32(data) != kMagic) return Bad("no LOOM tag");
  LayoutView v;
  uint32_t format = Get32(data + 4);
  if (format < 1 || format > 3) return Bad(absl::StrCat("format ", format));
  v.format = static_cast<Format>(format);
  uint64_t metadata_size = Get32(data + 8);
  uint64_t count = Get32(data + 12);
  if (count > kMaxBuffers) return Bad("too many buffers");
  uint64_t table_end = kHeader + kEntry * count;
  if (table_end > size || metadata_size > size - table_end) {
    return Bad("header past the end");
  }
  v.metadata = std::string_view(reinterpret_cast<const char*>(data) + table_end,
                                metadata_size);
  uint64_t floor = table_end + metadata_size;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t offset = Get64(data + kHeader + kEntry * i);
    uint64_t length = Get64(data + kHeader + kEntry * i + 8);
    if (offset % kAlign != 0 || offset < floor || offset > size ||
        length > size - offset) {
      return Bad(absl::StrCat("buffer ", i, " out of bounds"));
    }
    v.buffers.emplace_back(reinterpret_cast<const char*>(data) + offset,
                           length);
    floor = offset + length;
  }
  return v;
}

absl::StatusOr<LayoutView> ParseSingleBuffer(const uint8_t* data, uint64_t size,
                                             Format format) {
  auto v = ParseLayout(data, size);
  if (!v.ok()) return v;
  if (v->format != format || v->buffers.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("object has format ", static_cast<uint32_t>(v->format),
                     " with ", v->buffers.size(), " buffers; expected format ",
                     static_cast<uint32_t>(format), " with one"));
  }
  return v;
}

}  // namespace loom
