// Tensors as a msgpack extension: [u32 LE n][msgpack [dtype, shape, pad]]
// [pad zero bytes][elements], the elements 64-byte aligned when the writer
// knew where the extension lay in its value.
#include "runtime/tensor_codec.h"

#include <cstring>
#include <string>

#include "loom/serialization.h"

namespace loom {
namespace {

thread_local ArgumentPins* tls_pins = nullptr;

constexpr size_t kAlign = 64;

// Bytes msgpack::packer::pack_ext writes before a payload of n bytes.
size_t ExtHeaderSize(size_t n) {
  if (n == 1 || n == 2 || n == 4 || n == 8 || n == 16) return 2;
  if (n < 256) return 3;
  if (n < 65536) return 4;
  return 6;
}

std::string Header(const Tensor& t, int pad) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> p(b);
  p.pack_array(3);
  p.pack(t.dtype());
  p.pack(t.shape());
  p.pack(pad);
  return std::string(b.data(), b.size());
}

}  // namespace

ArgumentPins::ArgumentPins() : outer_(tls_pins) { tls_pins = this; }
ArgumentPins::~ArgumentPins() { tls_pins = outer_; }

void ArgumentPins::Add(const void* data, size_t size,
                       std::shared_ptr<const void> holder) {
  const char* p = static_cast<const char*>(data);
  ranges_.push_back({p, p + size, std::move(holder)});
}

std::shared_ptr<const void> ArgumentPins::HolderOf(const void* p, size_t n) {
  const char* b = static_cast<const char*>(p);
  for (ArgumentPins* pins = tls_pins; pins; pins = pins->outer_) {
    for (const Range& r : pins->ranges_) {
      if (b >= r.begin && b + n <= r.end) return r.holder;
    }
  }
  return nullptr;
}

namespace internal {

std::string TensorExtPrefix(const Tensor& t, size_t at) {
  // The header's size does not depend on the pad (0..63, one byte), but
  // the extension header's does on the payload's: settle both.
  size_t fixed = 4 + Header(t, 0).size();
  size_t ext = 6;
  int pad = 0;
  for (int i = 0; i < 3; ++i) {
    pad = static_cast<int>((kAlign - (at + ext + fixed) % kAlign) % kAlign);
    size_t again = ExtHeaderSize(fixed + pad + t.nbytes());
    if (again == ext) break;
    ext = again;
  }
  std::string header = Header(t, pad);
  std::string out(4, '\0');
  uint32_t n = static_cast<uint32_t>(header.size());
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(n >> (8 * i));
  out += header;
  out.append(pad, '\0');
  return out;
}

Tensor TensorFromExt(const char* payload, size_t size,
                     std::shared_ptr<const void> holder) {
  if (size < 4) throw Error("bad tensor value: too short");
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) {
    n |= static_cast<uint32_t>(static_cast<uint8_t>(payload[i])) << (8 * i);
  }
  if (n > size - 4) throw Error("bad tensor value: header past its end");
  std::string dtype;
  std::vector<int64_t> shape;
  int pad = 0;
  try {
    msgpack::object_handle h = msgpack::unpack(payload + 4, n);
    msgpack::type::tuple<std::string, std::vector<int64_t>, int> parts;
    h.get().convert(parts);
    dtype = parts.get<0>();
    shape = parts.get<1>();
    pad = parts.get<2>();
  } catch (const std::exception& e) {
    throw Error(std::string("bad tensor value: ") + e.what());
  }
  if (pad < 0 || static_cast<size_t>(pad) > size - 4 - n) {
    throw Error("bad tensor value: padding past its end");
  }
  const char* data = payload + 4 + n + pad;
  size_t nbytes = size - 4 - n - pad;
  if (!holder) {
    return Tensor(std::move(dtype), std::move(shape),
                  Buffer::Copy(data, nbytes));
  }
  return Tensor(std::move(dtype), std::move(shape),
                Buffer(reinterpret_cast<const uint8_t*>(data), nbytes,
                       std::move(holder)));
}

Tensor TensorFromExt(const char* payload, size_t size) {
  return TensorFromExt(payload, size, ArgumentPins::HolderOf(payload, size));
}

}  // namespace internal
}  // namespace loom
