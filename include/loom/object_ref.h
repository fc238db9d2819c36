// include/loom/object_ref.h
//
// ObjectRef<T>: a reference to a value that a task returns or Put stores,
// possibly not computed yet. Copies count as references; the value is freed
// when the last one anywhere is gone.
//
//   loom::ObjectRef<int> ref = loom::Task(Add).Remote(1, 2);
//   std::shared_ptr<int> v = loom::Get(ref);
#ifndef LOOM_OBJECT_REF_H_
#define LOOM_OBJECT_REF_H_

#include <string>
#include <type_traits>

#include "loom/internal/runtime.h"

namespace loom {

template <typename T>
class ObjectRef {
 public:
  using value_type = T;

  ObjectRef() = default;
  // Takes one reference on `id`.
  explicit ObjectRef(std::string id) : id_(std::move(id)) { Ref(); }
  ObjectRef(const ObjectRef& o) : id_(o.id_) { Ref(); }
  ObjectRef(ObjectRef&& o) noexcept : id_(std::move(o.id_)) { o.id_.clear(); }
  ObjectRef& operator=(const ObjectRef& o) {
    if (this != &o) {
      Unref();
      id_ = o.id_;
      Ref();
    }
    return *this;
  }
  ObjectRef& operator=(ObjectRef&& o) noexcept {
    if (this != &o) {
      Unref();
      id_ = std::move(o.id_);
      o.id_.clear();
    }
    return *this;
  }
  ~ObjectRef() { Unref(); }

  // The object id, 20 bytes.
  const std::string& Binary() const { return id_; }
  bool IsNil() const { return id_.empty(); }
  bool operator==(const ObjectRef& o) const { return id_ == o.id_; }

 private:
  void Ref() {
    if (!id_.empty()) internal::AddLocalRef(id_);
  }
  void Unref() {
    if (!id_.empty()) internal::RemoveLocalRef(id_);
  }
  std::string id_;
};

template <typename T>
struct IsObjectRef : std::false_type {};
template <typename T>
struct IsObjectRef<ObjectRef<T>> : std::true_type {};

}  // namespace loom

#endif  // LOOM_OBJECT_REF_H_
