// include/loom/object_ref.h
//
// ObjectRef<T>: a reference to a value that a task returns or Put stores,
// possibly not computed yet. Copies count as references; the value is freed
// when the last one anywhere is gone.
//
//   loom::ObjectRef<int> ref = loom::Task(Add).Remote(1, 2);
//   std::shared_ptr<int> v = loom::Get(ref);
//
// Refs may travel inside values (a std::vector<ObjectRef<T>> put or
// returned): the value keeps them alive, and whoever reads it borrows them
// from their owner until its own copies are gone.
#ifndef LOOM_OBJECT_REF_H_
#define LOOM_OBJECT_REF_H_

#include <string>
#include <type_traits>

#include "loom/internal/runtime.h"
#include "loom/serialization.h"

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

// In msgpack a ref is [id (bin), owner address (str)]; a nil ref has an
// empty id.
namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {

  template <typename T>
  struct pack<loom::ObjectRef<T>> {
    template <typename Stream>
    packer<Stream>& operator()(packer<Stream>& o,
                               const loom::ObjectRef<T>& ref) const {
      const std::string& id = ref.Binary();
      std::string owner =
          id.empty() ? std::string() : loom::internal::NoteSerializedRef(id);
      o.pack_array(2);
      o.pack_bin(static_cast<uint32_t>(id.size()));
      o.pack_bin_body(id.data(), static_cast<uint32_t>(id.size()));
      o.pack(owner);
      return o;
    }
  };

  template <typename T>
  struct convert<loom::ObjectRef<T>> {
    const msgpack::object& operator()(const msgpack::object& o,
                                      loom::ObjectRef<T>& ref) const {
      if (o.type != type::ARRAY || o.via.array.size != 2 ||
          o.via.array.ptr[0].type != type::BIN) {
        throw type_error();
      }
      const auto& bin = o.via.array.ptr[0].via.bin;
      std::string id(bin.ptr, bin.size);
      if (id.empty()) {
        ref = loom::ObjectRef<T>();
        return o;
      }
      loom::internal::BorrowRef(id, o.via.array.ptr[1].as<std::string>());
      ref = loom::ObjectRef<T>(std::move(id));
      return o;
    }
  };

  }  // namespace adaptor
}  // MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS)
}  // namespace msgpack

#endif  // LOOM_OBJECT_REF_H_
