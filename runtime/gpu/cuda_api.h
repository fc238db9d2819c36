// runtime/gpu/cuda_api.h
//
// The CUDA runtime (libcudart), loaded at run time: Loom never links CUDA,
// so a machine without a GPU or driver builds and runs everything. Only the
// few entry points Loom uses are declared, by their C signatures
// (cuda_runtime_api.h), with enums as ints.
//
//   auto cuda = gpu::Cuda();                       // loads once
//   if (!cuda.ok()) return cuda.status();          // "CUDA runtime is not
//                                                  //  available: ..."
//   void* p = nullptr;
//   absl::Status s = gpu::CudaCheck((*cuda)->Malloc(&p, n), "cudaMalloc");
//
// The library: $LOOM_CUDART_LIB when set, else libcudart.so.13,
// libcudart.so, then /usr/local/cuda/lib64's.
#ifndef LOOM_RUNTIME_GPU_CUDA_API_H_
#define LOOM_RUNTIME_GPU_CUDA_API_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace loom::gpu {

// cudaIpcMemHandle_t.
struct IpcMemHandle {
  char reserved[64];
};
using CudaStream = void*;  // cudaStream_t

inline constexpr int kCudaSuccess = 0;
inline constexpr int kMemcpyDefault = 4;       // cudaMemcpyDefault
inline constexpr unsigned kIpcLazyPeer = 0x1;  // LazyEnablePeerAccess

// Entry points; every one returns a cudaError_t (0: success) except
// GetErrorString.
struct CudaApi {
  int (*Malloc)(void** ptr, size_t bytes);
  int (*Free)(void* ptr);
  int (*Memcpy)(void* dst, const void* src, size_t bytes, int kind);
  int (*Memset)(void* ptr, int value, size_t bytes);
  int (*GetDevice)(int* device);
  int (*SetDevice)(int device);
  int (*GetDeviceCount)(int* count);
  int (*DeviceGetPCIBusId)(char* bus_id, int len, int device);
  int (*DeviceGetByPCIBusId)(int* device, const char* bus_id);
  int (*IpcGetMemHandle)(IpcMemHandle* handle, void* ptr);
  int (*IpcOpenMemHandle)(void** ptr, IpcMemHandle handle, unsigned flags);
  int (*IpcCloseMemHandle)(void* ptr);
  int (*StreamCreate)(CudaStream* stream);
  int (*StreamSynchronize)(CudaStream stream);
  int (*StreamDestroy)(CudaStream stream);
  const char* (*GetErrorString)(int error);
};

// The loaded runtime (loaded on first call, kept for the process), or
// FailedPrecondition "CUDA runtime is not available: <dlerror>".
// Thread-safe.
absl::StatusOr<const CudaApi*> Cuda();

// OK for cudaSuccess; else Internal "<what>: <cudaGetErrorString>".
absl::Status CudaCheck(int rc, const std::string& what);

// Runs with `device` current on this thread; restores the previous one.
class ScopedDevice {
 public:
  ScopedDevice(const CudaApi* cuda, int device);
  ~ScopedDevice();
  ScopedDevice(const ScopedDevice&) = delete;
  ScopedDevice& operator=(const ScopedDevice&) = delete;
  // The error of switching, if any.
  const absl::Status& status() const { return status_; }

 private:
  const CudaApi* cuda_;
  int previous_ = -1;
  absl::Status status_;
};

// This machine, as CudaBuffers name it: hostname plus boot id, so that two
// machines with one name (containers, say) still differ.
const std::string& MachineId();

// The candidates dlopen tries, in order: `env_var`'s value alone when set,
// else `names`. Returns the handle or the last dlerror in *error.
void* OpenFirst(const char* env_var, const char* const* names, size_t n,
                std::string* error);

// Looks `name` up in `lib` into *out; a symbol that is not there leaves
// *out null and is appended to *missing (unless missing is null: optional).
void* FindSymbol(void* lib, const char* name, std::string* missing);
template <typename Fn>
bool Bind(void* lib, const char* name, Fn* out, std::string* missing) {
  *out = reinterpret_cast<Fn>(FindSymbol(lib, name, missing));
  return *out != nullptr;
}

}  // namespace loom::gpu

#endif  // LOOM_RUNTIME_GPU_CUDA_API_H_
