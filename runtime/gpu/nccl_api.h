// runtime/gpu/nccl_api.h
//
// NCCL, loaded at run time like the CUDA runtime (cuda_api.h): the entry
// points Loom uses, by their C signatures (nccl.h), enums as ints.
//
//   auto nccl = gpu::Nccl();   // "NCCL is not available: <dlerror>"
//   NcclUniqueId id;
//   absl::Status s = gpu::NcclCheck((*nccl)->GetUniqueId(&id),
//                                   "ncclGetUniqueId");
//
// The library: $LOOM_NCCL_LIB when set, else libnccl.so.2, libnccl.so, then
// /usr/local/cuda/lib64/libnccl.so.2.
#ifndef LOOM_RUNTIME_GPU_NCCL_API_H_
#define LOOM_RUNTIME_GPU_NCCL_API_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/gpu/cuda_api.h"

namespace loom::gpu {

// ncclUniqueId.
struct NcclUniqueId {
  char internal[128];
};
using NcclComm = void*;  // ncclComm_t

// ncclRedOp_t and ncclDataType_t values.
enum NcclOp : int { kNcclSum = 0, kNcclProd = 1, kNcclMax = 2, kNcclMin = 3 };
enum NcclType : int {
  kNcclInt8 = 0,
  kNcclUint8 = 1,
  kNcclInt32 = 2,
  kNcclUint32 = 3,
  kNcclInt64 = 4,
  kNcclUint64 = 5,
  kNcclFloat16 = 6,
  kNcclFloat32 = 7,
  kNcclFloat64 = 8,
  kNcclBfloat16 = 9,
};

// Every entry point returns an ncclResult_t (0: success) except the
// string ones.
struct NcclApi {
  int (*GetUniqueId)(NcclUniqueId* id);
  int (*CommInitRank)(NcclComm* comm, int nranks, NcclUniqueId id, int rank);
  int (*CommDestroy)(NcclComm comm);
  int (*CommAbort)(NcclComm comm);
  int (*AllReduce)(const void* send, void* recv, size_t count, int dtype,
                   int op, NcclComm comm, CudaStream stream);
  int (*Broadcast)(const void* send, void* recv, size_t count, int dtype,
                   int root, NcclComm comm, CudaStream stream);
  int (*Reduce)(const void* send, void* recv, size_t count, int dtype, int op,
                int root, NcclComm comm, CudaStream stream);
  int (*AllGather)(const void* send, void* recv, size_t send_count, int dtype,
                   NcclComm comm, CudaStream stream);
  int (*ReduceScatter)(const void* send, void* recv, size_t recv_count,
                       int dtype, int op, NcclComm comm, CudaStream stream);
  int (*Send)(const void* send, size_t count, int dtype, int peer,
              NcclComm comm, CudaStream stream);
  int (*Recv)(void* recv, size_t count, int dtype, int peer, NcclComm comm,
              CudaStream stream);
  int (*GroupStart)();
  int (*GroupEnd)();
  const char* (*GetErrorString)(int result);
  const char* (*GetLastError)(NcclComm comm);  // may be null (old NCCL)
};

// The loaded library (loaded on first call, kept for the process), or
// FailedPrecondition "NCCL is not available: <dlerror>". Thread-safe.
absl::StatusOr<const NcclApi*> Nccl();

// OK for ncclSuccess; else Internal "<what>: <ncclGetErrorString>" plus
// NCCL's last error message when it has one.
absl::Status NcclCheck(int rc, const std::string& what);

}  // namespace loom::gpu

#endif  // LOOM_RUNTIME_GPU_NCCL_API_H_
