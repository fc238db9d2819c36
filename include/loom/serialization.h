// include/loom/serialization.h
//
// How C++ values travel: msgpack. Standard containers, strings and numbers
// work as they are; a struct opts in with MSGPACK_DEFINE(field, ...).
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

#include "loom/errors.h"

namespace loom {

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
    msgpack::object_handle handle = msgpack::unpack(bytes.data(), bytes.size());
    return handle.get().as<T>();
  } catch (const std::exception& e) {
    throw Error(std::string("cannot deserialize value: ") + e.what());
  }
}

}  // namespace loom

#endif  // LOOM_SERIALIZATION_H_
