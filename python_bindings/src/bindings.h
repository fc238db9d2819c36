// python_bindings/src/bindings.h
//
// What the binding files share: the Python-visible ObjectRef, the pinned
// buffer type behind zero-copy reads, and the core worker lookup. Each
// Bind* function adds one subsystem's functions to the _core module.
#ifndef LOOM_PYTHON_BINDINGS_H_
#define LOOM_PYTHON_BINDINGS_H_

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "runtime/core_worker.h"

namespace loom::py {

namespace pyb = pybind11;

// The process's core worker; raises RuntimeError when not initialized.
CoreWorker& Core();

// A reference to an object: holds one local reference while it lives.
class PyObjectRef {
 public:
  PyObjectRef(ObjectId id, std::string owner);
  ~PyObjectRef();
  PyObjectRef(const PyObjectRef&) = delete;
  PyObjectRef& operator=(const PyObjectRef&) = delete;
  const ObjectId& id() const { return id_; }
  // host:port of the owner's core worker ("" until asked: ours).
  std::string owner() const;

 private:
  ObjectId id_;
  std::string owner_;
  // The incarnation of the core worker that counted it (0: none); a ref
  // kept past shutdown() is never released on the next init()'s.
  uint32_t counted_by_ = 0;
};

// Read-only bytes that keep what backs them (a store pin, a string) alive.
struct Pinned {
  const char* data = nullptr;
  size_t size = 0;
  std::shared_ptr<const void> holder;
};

// Runs `wait(slice_ms)` (nullopt: not done yet) with the GIL released. A
// driver waits in slices, so that Ctrl-C (a pending signal) interrupts it
// with KeyboardInterrupt. Returns nullopt when timeout_ms (>= 0) passes.
template <typename T, typename Fn>
std::optional<T> WaitInterruptibly(int64_t timeout_ms, Fn wait) {
  constexpr int64_t kSliceMs = 100;
  bool sliced = Core().is_driver();
  auto start = std::chrono::steady_clock::now();
  while (true) {
    int64_t left = -1;
    if (timeout_ms >= 0) {
      auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count();
      left = std::max<int64_t>(0, timeout_ms - spent);
    }
    int64_t slice = left;
    if (sliced && (slice < 0 || slice > kSliceMs)) slice = kSliceMs;
    std::optional<T> r;
    {
      pyb::gil_scoped_release release;
      r = wait(slice);
    }
    if (r) return r;
    if (PyErr_CheckSignals() != 0) throw pyb::error_already_set();
    if (left >= 0 && slice >= left) return std::nullopt;
  }
}

// A serialized Python value, (pickle bytes, [out-of-band buffers]), viewed
// in place while this lives; raises ValueError for a buffer that is not
// contiguous.
struct Serialized {
  std::string_view metadata;
  std::vector<pyb::buffer_info> infos;
  std::vector<std::string_view> buffers;
  uint64_t size = 0;  // metadata and buffers
};
Serialized ViewSerialized(const pyb::handle& metadata,
                          const pyb::handle& buffers);

void BindObjects(pyb::module_& m);
void BindTasks(pyb::module_& m);
void BindCluster(pyb::module_& m);
void BindGpu(pyb::module_& m);
void BindFutures(pyb::module_& m);
void BindMsgpack(pyb::module_& m);
void BindLogs(pyb::module_& m);
void BindState(pyb::module_& m);
void BindMetrics(pyb::module_& m);
void BindServe(pyb::module_& m);

// Queues a token for loom/_private/futures.py's thread (bind_futures.cc):
// for completions that are not objects (a serve handle's reply).
void PushReadyToken(int64_t token);

// The (format, metadata, [buffers]) of a whole object's bytes, views into
// `pinned`; bytes without the layout's tag are a bare msgpack value (an
// inline C++ value): (kMsgpack, b"", [the bytes]).
pyb::tuple ParseObject(const Pinned& pinned);
// The error tuple Python turns into an exception:
// (kind, type, message, task_name, data).
pyb::tuple ErrorTuple(const rpc::ErrorInfo& e);
// Raises the Python exception for a failed status.
[[noreturn]] void ThrowStatus(const absl::Status& s);

}  // namespace loom::py

#endif  // LOOM_PYTHON_BINDINGS_H_
