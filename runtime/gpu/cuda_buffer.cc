// loom::CudaBuffer (include/loom/gpu.h): device memory shared between the
// processes of one machine through CUDA IPC handles.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "loom/errors.h"
#include "loom/gpu.h"
#include "runtime/gpu/cuda_api.h"

namespace loom {
namespace {

using gpu::CudaApi;
using gpu::CudaCheck;

[[noreturn]] void Throw(const absl::Status& s) {
  throw Error(std::string(s.message()));
}

const std::string& LocalHost() { return gpu::MachineId(); }

// Device memory as this process sees it: allocated here (freed when the
// last holder drops) or mapped from another process (unmapped then).
struct Mapping {
  const CudaApi* cuda = nullptr;
  void* ptr = nullptr;
  int device = 0;
  bool allocated = false;

  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (ptr == nullptr) return;
    gpu::ScopedDevice on(cuda, device);
    // Errors here have no one to go to; the process is likely exiting.
    if (allocated) {
      cuda->Free(ptr);
    } else {
      cuda->IpcCloseMemHandle(ptr);
    }
  }
};

// What this process allocated (by address) and what it mapped (by
// exporter pid and handle), so that every copy shares one Mapping.
class Mappings {
 public:
  static Mappings& Get() {
    static Mappings* m = new Mappings;
    return *m;
  }
  void AddAllocated(const CudaBuffer::Descriptor& d,
                    const std::shared_ptr<Mapping>& m) {
    absl::MutexLock lock(&mu_);
    Sweep();
    allocated_[d.exporter_address] = {d.ipc_handle, m};
  }
  // The live allocation `d` names (same address and handle), or null.
  std::shared_ptr<Mapping> FindAllocated(const CudaBuffer::Descriptor& d) {
    absl::MutexLock lock(&mu_);
    auto it = allocated_.find(d.exporter_address);
    if (it == allocated_.end() || it->second.handle != d.ipc_handle) {
      return nullptr;
    }
    return it->second.mapping.lock();
  }
  // The mapping of `d`, opened with `open` when there is none alive.
  absl::StatusOr<std::shared_ptr<Mapping>> FindOrOpen(
      const CudaBuffer::Descriptor& d,
      const std::function<absl::StatusOr<std::shared_ptr<Mapping>>()>& open) {
    std::string key = absl::StrCat(d.pid, ":", d.ipc_handle);
    absl::MutexLock lock(&mu_);
    auto it = imported_.find(key);
    if (it != imported_.end()) {
      if (auto m = it->second.lock()) return m;
    }
    auto opened = open();
    if (opened.ok()) {
      Sweep();
      imported_[key] = *opened;
    }
    return opened;
  }

 private:
  struct Allocation {
    std::string handle;
    std::weak_ptr<Mapping> mapping;
  };
  static bool Expired(const std::weak_ptr<Mapping>& m) { return m.expired(); }
  static bool Expired(const Allocation& a) { return a.mapping.expired(); }
  template <typename Table>
  static void EraseExpired(Table* table) {
    for (auto it = table->begin(); it != table->end();) {
      it = Expired(it->second) ? table->erase(it) : std::next(it);
    }
  }
  void Sweep() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    EraseExpired(&allocated_);
    EraseExpired(&imported_);
  }

  absl::Mutex mu_;
  std::map<uint64_t, Allocation> allocated_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::weak_ptr<Mapping>> imported_ ABSL_GUARDED_BY(mu_);
};

std::string VisibleDevicesNote() {
  const char* env = std::getenv("CUDA_VISIBLE_DEVICES");
  return absl::StrCat("CUDA_VISIBLE_DEVICES=", env ? env : "(unset)");
}

// Maps another process's memory into this one.
absl::StatusOr<std::shared_ptr<Mapping>> OpenIpc(
    const CudaBuffer::Descriptor& d) {
  auto cuda = gpu::Cuda();
  if (!cuda.ok()) return cuda.status();
  int device = -1;
  int rc = (*cuda)->DeviceGetByPCIBusId(&device, d.pci_bus_id.c_str());
  if (rc != gpu::kCudaSuccess) {
    return absl::FailedPreconditionError(
        absl::StrCat("CudaBuffer: its GPU (PCI bus id ", d.pci_bus_id,
                     ") is not visible in this process (", VisibleDevicesNote(),
                     "); give this actor or task a share of that GPU: ",
                     CudaCheck(rc, "cudaDeviceGetByPCIBusId").message()));
  }
  gpu::ScopedDevice on(*cuda, device);
  if (!on.status().ok()) return on.status();
  gpu::IpcMemHandle handle;
  std::memcpy(handle.reserved, d.ipc_handle.data(), sizeof(handle.reserved));
  auto m = std::make_shared<Mapping>();
  m->cuda = *cuda;
  m->device = device;
  rc = (*cuda)->IpcOpenMemHandle(&m->ptr, handle, gpu::kIpcLazyPeer);
  if (rc != gpu::kCudaSuccess) {
    m->ptr = nullptr;
    return absl::FailedPreconditionError(
        absl::StrCat(CudaCheck(rc, "cudaIpcOpenMemHandle").message(),
                     " (the memory belongs to pid ", d.pid,
                     ", which must still hold a CudaBuffer to it)"));
  }
  return m;
}

}  // namespace

struct CudaBuffer::State {
  Descriptor desc;
  absl::Mutex mu;
  std::shared_ptr<Mapping> mapping ABSL_GUARDED_BY(mu);

  // The mapping in this process, made on first use.
  const Mapping& Map() {
    absl::MutexLock lock(&mu);
    if (mapping != nullptr) return *mapping;
    if (desc.host != LocalHost()) {
      throw Error(absl::StrCat(
          "CudaBuffer: the memory is on another machine (", desc.host, ", pid ",
          desc.pid, "; this is ", LocalHost(),
          "): CUDA IPC works within one machine only; move it with an NCCL "
          "group (loom/collective.h) or copy it to the host first"));
    }
    if (desc.pid == getpid()) {
      mapping = Mappings::Get().FindAllocated(desc);
      if (mapping == nullptr) {
        throw Error(
            "CudaBuffer: this process allocated the memory but no longer "
            "holds a CudaBuffer to it, so it was freed");
      }
      return *mapping;
    }
    auto opened =
        Mappings::Get().FindOrOpen(desc, [&] { return OpenIpc(desc); });
    if (!opened.ok()) Throw(opened.status());
    mapping = *opened;
    return *mapping;
  }
};

CudaBuffer CudaBuffer::Allocate(size_t bytes) {
  if (bytes == 0) return CudaBuffer();
  const std::string where =
      absl::StrCat("CudaBuffer::Allocate(", bytes, " bytes): ");
  auto cuda_or = gpu::Cuda();
  if (!cuda_or.ok())
    throw Error(where + std::string(cuda_or.status().message()));
  const CudaApi* cuda = *cuda_or;
  auto check = [&where](int rc, const std::string& what) {
    if (absl::Status s = CudaCheck(rc, what); !s.ok()) {
      throw Error(where + std::string(s.message()));
    }
  };
  int device = 0;
  check(cuda->GetDevice(&device), "cudaGetDevice");
  auto m = std::make_shared<Mapping>();
  m->cuda = cuda;
  m->device = device;
  m->allocated = true;
  int rc = cuda->Malloc(&m->ptr, bytes);
  if (rc != gpu::kCudaSuccess) {
    m->ptr = nullptr;
    throw Error(where + std::string(CudaCheck(rc, "cudaMalloc").message()));
  }
  auto state = std::make_shared<State>();
  Descriptor& d = state->desc;
  gpu::IpcMemHandle handle;
  check(cuda->IpcGetMemHandle(&handle, m->ptr), "cudaIpcGetMemHandle");
  d.ipc_handle.assign(handle.reserved, sizeof(handle.reserved));
  char bus[64] = {0};
  check(cuda->DeviceGetPCIBusId(bus, sizeof(bus) - 1, device),
        "cudaDeviceGetPCIBusId");
  d.pci_bus_id = bus;
  d.size = bytes;
  d.pid = getpid();
  d.host = LocalHost();
  d.exporter_address = reinterpret_cast<uint64_t>(m->ptr);
  Mappings::Get().AddAllocated(d, m);
  {
    absl::MutexLock lock(&state->mu);
    state->mapping = std::move(m);
  }
  return CudaBuffer(std::move(state));
}

CudaBuffer CudaBuffer::Import(Descriptor d) {
  if (d.size == 0) return CudaBuffer();
  if (d.ipc_handle.size() != sizeof(gpu::IpcMemHandle::reserved)) {
    throw Error(absl::StrCat("CudaBuffer: bad IPC handle (",
                             d.ipc_handle.size(), " bytes, not 64)"));
  }
  auto state = std::make_shared<State>();
  state->desc = std::move(d);
  return CudaBuffer(std::move(state));
}

CudaBuffer::Descriptor CudaBuffer::Export() const {
  if (state_ == nullptr) throw Error("CudaBuffer: empty");
  return state_->desc;
}

void* CudaBuffer::data() const {
  return state_ == nullptr ? nullptr : state_->Map().ptr;
}

size_t CudaBuffer::size() const {
  return state_ == nullptr ? 0 : state_->desc.size;
}

int CudaBuffer::device() const {
  if (state_ == nullptr) throw Error("CudaBuffer: empty");
  return state_->Map().device;
}

const std::string& CudaBuffer::pci_bus_id() const {
  static const std::string kNone;
  return state_ == nullptr ? kNone : state_->desc.pci_bus_id;
}

bool CudaBuffer::is_owner() const {
  return state_ != nullptr && state_->desc.pid == getpid() &&
         state_->desc.host == LocalHost();
}

void CudaBuffer::CopyFromHost(const void* src, size_t bytes, size_t offset) {
  if (bytes == 0) return;
  if (offset > size() || bytes > size() - offset) {
    throw Error(absl::StrCat("CudaBuffer::CopyFromHost: ", bytes,
                             " bytes at offset ", offset, " do not fit in ",
                             size()));
  }
  const Mapping& m = state_->Map();
  gpu::ScopedDevice on(m.cuda, m.device);
  if (!on.status().ok()) Throw(on.status());
  absl::Status s = CudaCheck(m.cuda->Memcpy(static_cast<char*>(m.ptr) + offset,
                                            src, bytes, gpu::kMemcpyDefault),
                             "cudaMemcpy (host to device)");
  if (!s.ok()) Throw(s);
}

std::vector<uint8_t> CudaBuffer::ToHost() const {
  std::vector<uint8_t> out(size());
  if (out.empty()) return out;
  const Mapping& m = state_->Map();
  gpu::ScopedDevice on(m.cuda, m.device);
  if (!on.status().ok()) Throw(on.status());
  absl::Status s = CudaCheck(
      m.cuda->Memcpy(out.data(), m.ptr, out.size(), gpu::kMemcpyDefault),
      "cudaMemcpy (device to host)");
  if (!s.ok()) Throw(s);
  return out;
}

}  // namespace loom
