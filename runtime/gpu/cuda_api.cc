#include "runtime/gpu/cuda_api.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace loom::gpu {
namespace {

constexpr const char* kCudartNames[] = {"libcudart.so.13", "libcudart.so",
                                        "/usr/local/cuda/lib64/libcudart.so.13",
                                        "/usr/local/cuda/lib64/libcudart.so"};

absl::StatusOr<const CudaApi*> Load() {
  std::string error;
  void* lib = OpenFirst("LOOM_CUDART_LIB", kCudartNames,
                        sizeof(kCudartNames) / sizeof(kCudartNames[0]), &error);
  if (lib == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("CUDA runtime is not available: ", error));
  }
  static CudaApi api;
  std::string missing;
  Bind(lib, "cudaMalloc", &api.Malloc, &missing);
  Bind(lib, "cudaFree", &api.Free, &missing);
  Bind(lib, "cudaMemcpy", &api.Memcpy, &missing);
  Bind(lib, "cudaMemset", &api.Memset, &missing);
  Bind(lib, "cudaGetDevice", &api.GetDevice, &missing);
  Bind(lib, "cudaSetDevice", &api.SetDevice, &missing);
  Bind(lib, "cudaGetDeviceCount", &api.GetDeviceCount, &missing);
  Bind(lib, "cudaDeviceGetPCIBusId", &api.DeviceGetPCIBusId, &missing);
  Bind(lib, "cudaDeviceGetByPCIBusId", &api.DeviceGetByPCIBusId, &missing);
  Bind(lib, "cudaIpcGetMemHandle", &api.IpcGetMemHandle, &missing);
  Bind(lib, "cudaIpcOpenMemHandle", &api.IpcOpenMemHandle, &missing);
  Bind(lib, "cudaIpcCloseMemHandle", &api.IpcCloseMemHandle, &missing);
  Bind(lib, "cudaStreamCreate", &api.StreamCreate, &missing);
  Bind(lib, "cudaStreamSynchronize", &api.StreamSynchronize, &missing);
  Bind(lib, "cudaStreamDestroy", &api.StreamDestroy, &missing);
  Bind(lib, "cudaGetErrorString", &api.GetErrorString, &missing);
  if (!missing.empty()) {
    // The library stays loaded: something else in the process may use it.
    return absl::FailedPreconditionError(absl::StrCat(
        "CUDA runtime is not available: the library lacks ", missing));
  }
  return &api;
}

}  // namespace

void* FindSymbol(void* lib, const char* name, std::string* missing) {
  void* sym = dlsym(lib, name);
  if (sym == nullptr && missing != nullptr) {
    absl::StrAppend(missing, missing->empty() ? "" : ", ", name);
  }
  return sym;
}

void* OpenFirst(const char* env_var, const char* const* names, size_t n,
                std::string* error) {
  const char* forced = std::getenv(env_var);
  if (forced != nullptr && *forced != '\0') {
    void* lib = dlopen(forced, RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      const char* e = dlerror();
      *error =
          absl::StrCat(env_var, "=", forced, ": ", e ? e : "dlopen failed");
    }
    return lib;
  }
  for (size_t i = 0; i < n; ++i) {
    void* lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (lib != nullptr) return lib;
    const char* e = dlerror();
    if (i == 0 || error->empty()) *error = e ? e : "dlopen failed";
  }
  return nullptr;
}

absl::StatusOr<const CudaApi*> Cuda() {
  static absl::StatusOr<const CudaApi*>* loaded = nullptr;
  static std::once_flag once;
  std::call_once(once,
                 [] { loaded = new absl::StatusOr<const CudaApi*>(Load()); });
  return *loaded;
}

absl::Status CudaCheck(int rc, const std::string& what) {
  if (rc == kCudaSuccess) return absl::OkStatus();
  auto cuda = Cuda();
  const char* text = cuda.ok() ? (*cuda)->GetErrorString(rc) : nullptr;
  return absl::InternalError(absl::StrCat(
      what, ": ", text ? text : "CUDA error", " (CUDA error ", rc, ")"));
}

const std::string& MachineId() {
  static const std::string* id = [] {
    char name[256] = {0};
    gethostname(name, sizeof(name) - 1);
    std::string boot;
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::getline(in, boot);
    return new std::string(boot.empty() ? name : absl::StrCat(name, "/", boot));
  }();
  return *id;
}

ScopedDevice::ScopedDevice(const CudaApi* cuda, int device) : cuda_(cuda) {
  status_ = CudaCheck(cuda_->GetDevice(&previous_), "cudaGetDevice");
  if (!status_.ok()) {
    previous_ = -1;
    return;
  }
  if (previous_ != device) {
    status_ = CudaCheck(cuda_->SetDevice(device), "cudaSetDevice");
  }
}

ScopedDevice::~ScopedDevice() {
  if (previous_ >= 0) cuda_->SetDevice(previous_);
}

}  // namespace loom::gpu
