// runtime/tensor_codec.h
//
// Tensors inside msgpack values (the kTensorExt extension of
// loom/serialization.h), and the pins that let a task's Tensor arguments
// view the store instead of copying it.
//
//   ArgumentPins pins;                    // on the executing thread
//   pins.Add(view.data, view.size, pin);  // an argument pinned in the store
//   ... deserialize the arguments: their Tensors view the store, each
//   holding `pin`, so a Tensor kept past the task keeps the object pinned.
#ifndef LOOM_RUNTIME_TENSOR_CODEC_H_
#define LOOM_RUNTIME_TENSOR_CODEC_H_

#include <cstddef>
#include <memory>
#include <vector>

namespace loom {

class ArgumentPins {
 public:
  ArgumentPins();
  ~ArgumentPins();
  ArgumentPins(const ArgumentPins&) = delete;
  ArgumentPins& operator=(const ArgumentPins&) = delete;
  void Add(const void* data, size_t size, std::shared_ptr<const void> holder);
  // The holder of the pinned range [p, p + n) on this thread, or null.
  static std::shared_ptr<const void> HolderOf(const void* p, size_t n);

 private:
  struct Range {
    const char* begin;
    const char* end;
    std::shared_ptr<const void> holder;
  };
  std::vector<Range> ranges_;
  ArgumentPins* outer_;
};

}  // namespace loom

#endif  // LOOM_RUNTIME_TENSOR_CODEC_H_
