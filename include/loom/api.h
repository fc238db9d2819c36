// include/loom/api.h
//
// Starting and joining clusters; getting, putting and waiting for values.
//
//   loom::Init({.code_search_path = {"/path/libmy_tasks.so"}});  // private
//   cluster auto ref = loom::Put(std::vector<int>{1, 2, 3}); auto v =
//   loom::Get(ref);                       // std::shared_ptr<std::vector<int>>
//   auto [ready, unready] = loom::Wait(refs, 1, /*timeout_ms=*/100);
//   loom::Shutdown();                              // also happens at exit
#ifndef LOOM_API_H_
#define LOOM_API_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "loom/buffer.h"
#include "loom/errors.h"
#include "loom/object_ref.h"
#include "loom/serialization.h"

namespace loom {

struct InitOptions {
  // Empty: start a private cluster (head + one raylet) that stops with this
  // process. "HOST:PORT": join the cluster whose head listens there. "auto":
  // $LOOM_ADDRESS, else the cluster last started under the session root.
  std::string address;
  // Shared libraries (or directories of them) holding LOOM_REMOTE code;
  // workers load them.
  std::vector<std::string> code_search_path;
  // For a private cluster: CPUs (-1: this machine's cores), GPUs, custom.
  int num_cpus = -1;
  int num_gpus = -1;  // -1: the GPUs NVML finds (none without a driver)
  std::map<std::string, double> resources;
  // For a private cluster: bytes of shared memory for objects (0: 30% of
  // the available memory).
  int64_t object_store_memory = 0;
  // Where session directories live (empty: $LOOM_SESSION_ROOT or /tmp/loom).
  std::string session_root;
  // For a private cluster: no cluster token (it stays on 127.0.0.1 either
  // way). For measuring the token's cost; leave it off otherwise.
  bool no_auth = false;
  // Print what this job's workers print, on any node, on this process's
  // stdout and stderr as "(pid=N, ip=IP) line". Shutdown() prints the last
  // lines first (waiting up to 2 s for them).
  bool log_to_driver = true;
  // Bytes of task specs this process keeps to rebuild lost objects from
  // their lineage, oldest evicted first (-1: $LOOM_MAX_LINEAGE_BYTES, else
  // 64 MiB; 0: none, and lost task results fail with ObjectLostError).
  int64_t max_lineage_bytes = -1;
  // Python functions and actors called from C++ (loom/cross_language.h)
  // run on this interpreter, which must import loom (empty:
  // $LOOM_PYTHON, else python3 on PATH), with these directories first on
  // sys.path (and the driver's working directory).
  std::string python_executable;
  std::vector<std::string> python_path;
};

// Throws loom::Error when the cluster cannot be started or joined.
void Init(const InitOptions& options = {});
void Shutdown();
bool IsInitialized();

// The GPU ids this worker holds (empty in a driver).
std::vector<int> GetGpuIds();

template <typename T>
ObjectRef<T> Put(const T& value) {
  internal::RefCollector refs;  // refs inside `value` live as long as it
  std::string bytes = Serialize(value);
  return ObjectRef<T>(internal::Put(std::move(bytes), refs.Take()));
}

// Blocks until the value is ready. Throws TaskError, WorkerCrashedError,
// InfeasibleError, or GetTimeoutError when timeout_ms >= 0 passes.
template <typename T>
std::shared_ptr<T> Get(const ObjectRef<T>& ref, int64_t timeout_ms = -1) {
  auto values = internal::Get({ref.Binary()}, timeout_ms);
  if constexpr (std::is_void_v<T>) {
    return nullptr;
  } else {
    internal::BorrowScope borrow;
    return std::make_shared<T>(Deserialize<T>(*values[0]));
  }
}

template <typename T>
std::vector<std::shared_ptr<T>> Get(const std::vector<ObjectRef<T>>& refs,
                                    int64_t timeout_ms = -1) {
  std::vector<std::string> ids;
  ids.reserve(refs.size());
  for (const auto& r : refs) ids.push_back(r.Binary());
  auto values = internal::Get(ids, timeout_ms);
  std::vector<std::shared_ptr<T>> out;
  out.reserve(values.size());
  internal::BorrowScope borrow;
  for (const auto& v : values) {
    if constexpr (std::is_void_v<T>) {
      out.push_back(nullptr);
    } else {
      out.push_back(std::make_shared<T>(Deserialize<T>(*v)));
    }
  }
  return out;
}

// Buffers and tensors skip serialization: Put copies the bytes once into
// shared memory; Get returns a view of shared memory (no copy) that keeps
// the object pinned while any copy of it lives.
ObjectRef<Buffer> Put(const Buffer& buffer);
ObjectRef<Tensor> Put(const Tensor& tensor);
std::shared_ptr<Buffer> Get(const ObjectRef<Buffer>& ref,
                            int64_t timeout_ms = -1);
std::shared_ptr<Tensor> Get(const ObjectRef<Tensor>& ref,
                            int64_t timeout_ms = -1);

template <typename T>
struct WaitResult {
  std::vector<ObjectRef<T>> ready;
  std::vector<ObjectRef<T>> unready;
};

// Returns once num_returns refs are ready or timeout_ms (>= 0) passes (no
// exception on timeout: fewer are ready); both lists keep the input order.
template <typename T>
WaitResult<T> Wait(const std::vector<ObjectRef<T>>& refs, int num_returns,
                   int64_t timeout_ms = -1) {
  std::vector<std::string> ids;
  ids.reserve(refs.size());
  for (const auto& r : refs) ids.push_back(r.Binary());
  std::vector<bool> ready = internal::Wait(ids, num_returns, timeout_ms);
  WaitResult<T> out;
  for (size_t i = 0; i < refs.size(); ++i) {
    (ready[i] ? out.ready : out.unready).push_back(refs[i]);
  }
  return out;
}

}  // namespace loom

#endif  // LOOM_API_H_
