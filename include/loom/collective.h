// include/loom/collective.h
//
// Collective groups among actors (or tasks) on GPUs, through NCCL: each
// member joins with its rank, then all call the same collectives in the
// same order on device memory (a CudaBuffer, or any device pointer).
//
//   // In each of N actors, each holding one GPU:
//   loom::collective::InitGroup(N, rank, "nccl", "grads");
//   loom::CudaBuffer grads = ...;               // N floats per rank
//   loom::collective::AllReduce(grads, loom::collective::DType::kFloat32,
//                               loom::collective::ReduceOp::kSum, "grads");
//   loom::collective::DestroyGroup("grads");
//
// Rank 0 makes the NCCL unique id and publishes it in the head's key-value
// store under "collective:nccl:<group>"; the other ranks poll for it, then
// all create the communicator on their current CUDA device (in a worker:
// its first GPU). Rank 0 deletes the key in DestroyGroup. NCCL needs one
// GPU per rank: two ranks may not share a GPU.
//
// Each group runs its collectives on its own CUDA stream, which waits for
// work queued on the legacy default stream, and synchronizes before
// returning: when a call returns, its result is in place.
//
// Errors throw loom::Error with NCCL's or CUDA's message: NCCL or CUDA not
// available ("NCCL is not available: ..."), a bad argument, a rank that
// does not show up within the timeout, a failed collective. NCCL
// (libnccl.so.2) and the CUDA runtime are loaded at run time
// ($LOOM_NCCL_LIB and $LOOM_CUDART_LIB override where from).
//
// Thread-safe; calls on one group run one at a time.
#ifndef LOOM_COLLECTIVE_H_
#define LOOM_COLLECTIVE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "loom/gpu.h"

namespace loom::collective {

enum class DType {
  kInt8,
  kUint8,
  kInt32,
  kUint32,
  kInt64,
  kUint64,
  kFloat16,
  kFloat32,
  kFloat64,
  kBFloat16,
};
enum class ReduceOp { kSum, kProduct, kMin, kMax };

// Bytes per element.
size_t DTypeSize(DType dtype);
// "float32", "int64", "bfloat16", ...; throws loom::Error for another name.
DType DTypeFromName(const std::string& name);

// Joins this process to `group_name` as `rank` of `world_size`. backend
// must be "nccl" (the "cpu" backend is Python's). Blocks until every rank
// has joined, or throws after timeout_ms. Throws when the group already
// exists in this process.
void InitGroup(int world_size, int rank, const std::string& backend = "nccl",
               const std::string& group_name = "default",
               int64_t timeout_ms = 60000);
// Leaves the group (no-op when not in it). Rank 0 deletes the unique id.
void DestroyGroup(const std::string& group_name = "default");
bool IsGroupInitialized(const std::string& group_name = "default");
// -1 when not in the group.
int GetRank(const std::string& group_name = "default");
int GetWorldSize(const std::string& group_name = "default");

// Pointers are device pointers on the group's GPU; counts are elements.
// Each rank's `data` becomes the reduction over all ranks (in place).
void AllReduce(void* data, size_t count, DType dtype,
               ReduceOp op = ReduceOp::kSum,
               const std::string& group_name = "default");
// Out of place: recv (count elements) gets the reduction of every rank's
// send.
void AllReduce(const void* send, void* recv, size_t count, DType dtype,
               ReduceOp op = ReduceOp::kSum,
               const std::string& group_name = "default");
// Every rank's `data` becomes root's.
void Broadcast(void* data, size_t count, DType dtype, int root = 0,
               const std::string& group_name = "default");
// root's `data` becomes the reduction over all ranks; the others' is kept.
void Reduce(void* data, size_t count, DType dtype, int root = 0,
            ReduceOp op = ReduceOp::kSum,
            const std::string& group_name = "default");
// recv (world_size * count elements) gets rank i's `send` at i * count.
void AllGather(const void* send, void* recv, size_t count, DType dtype,
               const std::string& group_name = "default");
// send holds world_size * count elements; rank r's recv (count) gets the
// reduction of every rank's block r.
void ReduceScatter(const void* send, void* recv, size_t count, DType dtype,
                   ReduceOp op = ReduceOp::kSum,
                   const std::string& group_name = "default");
// Point to point; each Send is matched by the peer's Recv of that count.
void Send(const void* data, size_t count, DType dtype, int peer,
          const std::string& group_name = "default");
void Recv(void* data, size_t count, DType dtype, int peer,
          const std::string& group_name = "default");
// Returns once every rank has called it.
void Barrier(const std::string& group_name = "default");

// The same on whole CudaBuffers (count: size / DTypeSize; AllGather's recv
// and ReduceScatter's send hold world_size blocks).
void AllReduce(CudaBuffer& buffer, DType dtype, ReduceOp op = ReduceOp::kSum,
               const std::string& group_name = "default");
void Broadcast(CudaBuffer& buffer, DType dtype, int root = 0,
               const std::string& group_name = "default");
void AllGather(const CudaBuffer& send, CudaBuffer& recv, DType dtype,
               const std::string& group_name = "default");
void ReduceScatter(const CudaBuffer& send, CudaBuffer& recv, DType dtype,
                   ReduceOp op = ReduceOp::kSum,
                   const std::string& group_name = "default");

}  // namespace loom::collective

#endif  // LOOM_COLLECTIVE_H_
