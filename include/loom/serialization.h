// include/loom/serialization.h
//
// How C++ values travel: msgpack. Standard containers, strings and numbers
// work as they are; a struct opts in with MSGPACK_DEFINE(field, ...). A
// loom::Tensor is a msgpack extension (type kTensorExt) that Python reads as
// a numpy array and writes from one, so values cross languages.
//
//   struct Point { double x, y; MSGPACK_DEFINE(x, y); };
//   std::string bytes = loom::Serialize(Point{1, 2});
//   Point p = loom::Deserialize<Point>(bytes);
#ifndef LOOM_SERIALIZATION_H_
#define LOOM_SERIALIZATION_H_

#ifndef MSGPACK_NO_BOOST
#define MSGPACK_NO_BOOST
#endif
#include <msgpack.hpp>
#include <string>
#include <string_view>

#include "loom/buffer.h"
#include "loom/errors.h"

namespace loom {

namespace internal {

// A Tensor inside a msgpack value: an extension of this type whose payload
// is [u32 LE n][n bytes: msgpack [dtype, shape, pad]][pad zero bytes]
// [the elements, row-major]. The pad puts the elements 64-byte aligned in
// the value when the tensor is the whole value (or the writer knew where
// it was); readers only follow it.
constexpr int8_t kTensorExt = 1;
// The payload's bytes before the elements, for an extension whose header
// (as msgpack::packer::pack_ext writes it) starts at `at` in its value.
std::string TensorExtPrefix(const Tensor& t, size_t at);
// The Tensor an extension payload holds (throws loom::Error when it is
// not one). Its elements are a view when they lie in bytes a task's
// argument pin holds (ArgumentPins), else a copy.
Tensor TensorFromExt(const char* payload, size_t size);
// The same, viewing the elements in place, kept alive by `holder`.
Tensor TensorFromExt(const char* payload, size_t size,
                     std::shared_ptr<const void> holder);
// Every msgpack string, binary and extension is referenced in place while
// a value is unpacked (the bytes outlive the unpacking).
inline bool ReferenceInPlace(msgpack::type::object_type, std::size_t, void*) {
  return true;
}

}  // namespace internal

template <typename T>
std::string Serialize(const T& value) {
  msgpack::sbuffer buffer;
  msgpack::pack(buffer, value);
  return std::string(buffer.data(), buffer.size());
}

// Throws loom::Error when the bytes are not a T.
template <typename T>
T Deserialize(std::string_view bytes) {
  try {
    msgpack::object_handle handle = msgpack::unpack(
        bytes.data(), bytes.size(), &internal::ReferenceInPlace);
    return handle.get().as<T>();
  } catch (const std::exception& e) {
    throw Error(std::string("cannot deserialize value: ") + e.what());
  }
}

}  // namespace loom

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {

  template <>
  struct pack<loom::Tensor> {
    template <typename Stream>
    packer<Stream>& operator()(packer<Stream>& o, const loom::Tensor& t) const {
      // Aligned as the whole value (the ext header at 0).
      std::string prefix = loom::internal::TensorExtPrefix(t, 0);
      size_t n = prefix.size() + t.nbytes();
      if (n > UINT32_MAX) throw loom::Error("tensor too large for one value");
      o.pack_ext(n, loom::internal::kTensorExt);
      o.pack_ext_body(prefix.data(), static_cast<uint32_t>(prefix.size()));
      o.pack_ext_body(reinterpret_cast<const char*>(t.data()),
                      static_cast<uint32_t>(t.nbytes()));
      return o;
    }
  };

  template <>
  struct convert<loom::Tensor> {
    const msgpack::object& operator()(const msgpack::object& o,
                                      loom::Tensor& t) const {
      if (o.type != msgpack::type::EXT ||
          o.via.ext.type() != loom::internal::kTensorExt) {
        throw msgpack::type_error();
      }
      t = loom::internal::TensorFromExt(o.via.ext.data(), o.via.ext.size);
      return o;
    }
  };

  }  // namespace adaptor
}  // MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS)
}  // namespace msgpack

#endif  // LOOM_SERIALIZATION_H_
