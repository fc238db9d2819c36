// include/loom/buffer.h
//
// Buffer and Tensor: contiguous bytes that Loom stores without serializing.
// Put writes them straight into the node's shared-memory arena (one copy);
// Get returns a view of the arena itself (no copy) that keeps the object
// pinned for as long as any copy of the Buffer or Tensor lives.
//
//   loom::Buffer in = loom::Buffer::Copy(bytes.data(), bytes.size());
//   auto ref = loom::Put(in);
//   std::shared_ptr<loom::Buffer> out = loom::Get(ref);   // out->data() is in
//   the arena
//
//   loom::Tensor t("float32", {1024, 1024}, loom::Buffer::Copy(p, 4 << 20));
//   auto tref = loom::Put(t);
//   auto view = loom::Get(tref);  // view->shape() == {1024, 1024}, no copy
#ifndef LOOM_BUFFER_H_
#define LOOM_BUFFER_H_

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace loom {

class Buffer {
 public:
  Buffer() = default;
  // A view of `size` bytes at `data`, kept valid by `holder`.
  Buffer(const uint8_t* data, size_t size, std::shared_ptr<const void> holder)
      : data_(data), size_(size), holder_(std::move(holder)) {}
  static Buffer Copy(const void* data, size_t size) {
    auto bytes =
        std::make_shared<std::string>(static_cast<const char*>(data), size);
    return Buffer(reinterpret_cast<const uint8_t*>(bytes->data()), size, bytes);
  }

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::shared_ptr<const void> holder_;
};

class Tensor {
 public:
  Tensor() = default;
  // dtype names the element type ("float32", "int64", ...); shape is in
  // elements. The buffer holds the elements, row-major.
  Tensor(std::string dtype, std::vector<int64_t> shape, Buffer data)
      : dtype_(std::move(dtype)),
        shape_(std::move(shape)),
        data_(std::move(data)) {}

  const std::string& dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  const Buffer& buffer() const { return data_; }
  const uint8_t* data() const { return data_.data(); }
  size_t nbytes() const { return data_.size(); }

 private:
  std::string dtype_;
  std::vector<int64_t> shape_;
  Buffer data_;
};

}  // namespace loom

#endif  // LOOM_BUFFER_H_
