// runtime/gpu/nccl_group.h
//
// What the Python binding needs beyond loom/collective.h: allgather and
// reducescatter over lists of separate device arrays (one per rank, as
// loom.collective passes them), and waiting for a producer's stream.
//
//   gpu::AllGatherList(x_ptr, {out0, out1}, n, DType::kFloat32, "g");
#ifndef LOOM_RUNTIME_GPU_NCCL_GROUP_H_
#define LOOM_RUNTIME_GPU_NCCL_GROUP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "loom/collective.h"

namespace loom::gpu {

// recv[i] (count elements each, one per rank) gets rank i's `send`: one
// NCCL broadcast per rank, fused in one NCCL group call. Throws
// loom::Error.
void AllGatherList(const void* send, const std::vector<void*>& recv,
                   size_t count, collective::DType dtype,
                   const std::string& group_name);
// Rank r's recv gets the reduction of every rank's send[r]: one NCCL
// reduce per rank, fused. Throws loom::Error.
void ReduceScatterList(const std::vector<const void*>& send, void* recv,
                       size_t count, collective::DType dtype,
                       collective::ReduceOp op, const std::string& group_name);
// Waits for the work queued on `stream` (a cudaStream_t as an integer, as
// __cuda_array_interface__ gives it; 0 waits for nothing). Throws
// loom::Error.
void SynchronizeStream(uintptr_t stream);

}  // namespace loom::gpu

#endif  // LOOM_RUNTIME_GPU_NCCL_GROUP_H_
