// include/loom/gpu.h
//
// CudaBuffer: device memory that travels between the actors and tasks of
// one machine as a CUDA IPC handle, never through host memory.
//
//   // In actor A (GPU 0.5):
//   held_ = loom::CudaBuffer::Allocate(n);      // on this worker's first GPU
//   held_.CopyFromHost(bytes.data(), n);
//   return held_;                               // travels as an IPC handle
//   // In actor B (GPU 0.5, same node), given that CudaBuffer:
//   std::vector<uint8_t> host = buffer.ToHost();  // maps it, then copies
//
// Ownership (the rule torch.multiprocessing documents): the memory belongs
// to the process that allocated it and lives while that process holds a
// CudaBuffer to it. A receiver's copies do not keep it alive: the
// allocating process must keep its CudaBuffer (an actor member, say) for as
// long as others use the memory. A receiver maps the memory when it first
// uses it (data(), CopyFromHost, ToHost) and unmaps it when its last copy
// of the buffer drops; receiving it in the allocating process itself reuses
// the pointer. Passing a received CudaBuffer on forwards the original
// handle.
//
// The receiver must run on the same machine and see the same GPU (same PCI
// bus id; e.g. both hold a share of it); otherwise its first use throws
// loom::Error saying why. Every CUDA failure throws loom::Error with the
// CUDA runtime's message ("cudaMalloc: out of memory ..."). The CUDA
// runtime (libcudart) is loaded at run time ($LOOM_CUDART_LIB overrides
// where from); Loom does not link it.
//
// Thread-safe: copies of a CudaBuffer may be used from many threads; the
// bytes themselves are the caller's to synchronize.
#ifndef LOOM_GPU_H_
#define LOOM_GPU_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loom/serialization.h"

namespace loom {

class CudaBuffer {
 public:
  // An empty buffer (size 0, no memory).
  CudaBuffer() = default;

  // Allocates `bytes` on the current CUDA device (in a worker: the first
  // GPU its lease holds). Throws loom::Error when CUDA is not available or
  // the allocation fails.
  static CudaBuffer Allocate(size_t bytes);

  // The device pointer in this process (maps a received buffer on first
  // use; throws loom::Error when it cannot).
  void* data() const;
  size_t size() const;
  bool empty() const { return size() == 0; }
  // The CUDA device ordinal in this process (mapping it first, as data()).
  int device() const;
  // The GPU's PCI bus id ("0000:3B:00.0"), the same in every process.
  const std::string& pci_bus_id() const;
  // Whether this process allocated the memory (and so keeps it alive).
  bool is_owner() const;

  // Copies `bytes` from host memory to offset `offset`; throws loom::Error
  // when they do not fit or CUDA fails. Synchronous.
  void CopyFromHost(const void* src, size_t bytes, size_t offset = 0);
  // The whole buffer, copied to the host. Synchronous.
  std::vector<uint8_t> ToHost() const;

  // What travels: the IPC handle and where it came from. Internal; the
  // msgpack adaptor below uses it.
  struct Descriptor {
    std::string ipc_handle;  // 64 bytes (cudaIpcMemHandle_t)
    uint64_t size = 0;
    std::string pci_bus_id;
    int64_t pid = 0;                // the allocating process
    std::string host;               // the allocating machine
    uint64_t exporter_address = 0;  // the pointer there
    MSGPACK_DEFINE(ipc_handle, size, pci_bus_id, pid, host, exporter_address);
  };
  // Throws loom::Error for an empty buffer.
  Descriptor Export() const;
  // A buffer that maps `d` on first use.
  static CudaBuffer Import(Descriptor d);

  struct State;  // internal

 private:
  explicit CudaBuffer(std::shared_ptr<State> state)
      : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace loom

// msgpack: a CudaBuffer packs as its Descriptor (an empty one as nil).
namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {

  template <>
  struct convert<loom::CudaBuffer> {
    const msgpack::object& operator()(const msgpack::object& o,
                                      loom::CudaBuffer& v) const {
      if (o.type == msgpack::type::NIL) {
        v = loom::CudaBuffer();
      } else {
        v = loom::CudaBuffer::Import(o.as<loom::CudaBuffer::Descriptor>());
      }
      return o;
    }
  };

  template <>
  struct pack<loom::CudaBuffer> {
    template <typename Stream>
    msgpack::packer<Stream>& operator()(msgpack::packer<Stream>& o,
                                        const loom::CudaBuffer& v) const {
      if (v.empty()) {
        o.pack_nil();
      } else {
        o.pack(v.Export());
      }
      return o;
    }
  };

  }  // namespace adaptor
}  // MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS)
}  // namespace msgpack

#endif  // LOOM_GPU_H_
