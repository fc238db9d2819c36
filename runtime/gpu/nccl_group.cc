// loom::collective (include/loom/collective.h): NCCL groups, their unique
// id exchanged through the head's key-value store.
#include "runtime/gpu/nccl_group.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "loom/collective.h"
#include "loom/errors.h"
#include "runtime/gpu/cuda_api.h"
#include "runtime/gpu/nccl_api.h"
#include "runtime/internal_kv.h"

namespace loom::collective {
namespace {

constexpr char kKvNamespace[] = "fn";  // where Python's kv_put writes too
constexpr int kPollMs = 20;

[[noreturn]] void Throw(const absl::Status& s) {
  throw Error(std::string(s.message()));
}
void Check(const absl::Status& s) {
  if (!s.ok()) Throw(s);
}

std::string KvKey(const std::string& group) {
  return "collective:nccl:" + group;
}

// One group in this process. `mu` serializes its calls.
struct Group {
  std::string name;
  int world = 0;
  int rank = 0;
  int device = 0;
  const gpu::NcclApi* nccl = nullptr;
  const gpu::CudaApi* cuda = nullptr;
  gpu::NcclComm comm = nullptr;
  gpu::CudaStream stream = nullptr;
  void* scratch = nullptr;  // 4 bytes, for Barrier
  absl::Mutex mu;

  // Frees what was made (used by DestroyGroup and a failed InitGroup).
  void Release() {
    gpu::ScopedDevice on(cuda, device);
    if (comm != nullptr) nccl->CommDestroy(comm);
    if (stream != nullptr) cuda->StreamDestroy(stream);
    if (scratch != nullptr) cuda->Free(scratch);
    comm = nullptr;
    stream = nullptr;
    scratch = nullptr;
  }
};

absl::Mutex groups_mu;
std::map<std::string, std::shared_ptr<Group>>& Groups()
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(groups_mu) {
  static auto* groups = new std::map<std::string, std::shared_ptr<Group>>;
  return *groups;
}

std::shared_ptr<Group> Find(const std::string& name) {
  absl::MutexLock lock(&groups_mu);
  auto it = Groups().find(name);
  if (it == Groups().end()) {
    throw Error(absl::StrCat("collective group \"", name,
                             "\" is not initialized in this process"));
  }
  return it->second;
}

int NcclType(DType d) {
  switch (d) {
    case DType::kInt8:
      return gpu::kNcclInt8;
    case DType::kUint8:
      return gpu::kNcclUint8;
    case DType::kInt32:
      return gpu::kNcclInt32;
    case DType::kUint32:
      return gpu::kNcclUint32;
    case DType::kInt64:
      return gpu::kNcclInt64;
    case DType::kUint64:
      return gpu::kNcclUint64;
    case DType::kFloat16:
      return gpu::kNcclFloat16;
    case DType::kFloat32:
      return gpu::kNcclFloat32;
    case DType::kFloat64:
      return gpu::kNcclFloat64;
    case DType::kBFloat16:
      return gpu::kNcclBfloat16;
  }
  throw Error("unknown DType");
}

int NcclOp(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return gpu::kNcclSum;
    case ReduceOp::kProduct:
      return gpu::kNcclProd;
    case ReduceOp::kMin:
      return gpu::kNcclMin;
    case ReduceOp::kMax:
      return gpu::kNcclMax;
  }
  throw Error("unknown ReduceOp");
}

// Runs `enqueue` (NCCL calls on g's stream; returns their status) on the
// group's device, then waits for the stream.
void Run(const std::string& name, const std::string& what,
         const std::function<absl::Status(Group&)>& enqueue) {
  std::shared_ptr<Group> g = Find(name);
  absl::MutexLock lock(&g->mu);
  if (g->comm == nullptr) {
    throw Error(absl::StrCat("collective group \"", name, "\" was destroyed"));
  }
  gpu::ScopedDevice on(g->cuda, g->device);
  Check(on.status());
  absl::Status s = enqueue(*g);
  if (s.ok()) {
    s = gpu::CudaCheck(g->cuda->StreamSynchronize(g->stream),
                       "cudaStreamSynchronize");
  }
  if (!s.ok()) {
    throw Error(absl::StrCat(what, " on group \"", name, "\": ", s.message()));
  }
}

void CheckPointer(const void* p, size_t count, const char* what) {
  if (p == nullptr && count > 0) {
    throw Error(absl::StrCat(what, ": null device pointer"));
  }
}

void CheckRank(const Group& g, int r, const char* what) {
  if (r < 0 || r >= g.world) {
    throw Error(
        absl::StrCat(what, ": rank ", r, " is not in [0, ", g.world, ")"));
  }
}

size_t Elements(const CudaBuffer& b, DType dtype, const char* what) {
  size_t each = DTypeSize(dtype);
  if (b.size() % each != 0) {
    throw Error(absl::StrCat(what, ": ", b.size(),
                             " bytes are not whole elements of ", each));
  }
  return b.size() / each;
}

// Rank 0 makes the id and publishes it; the others wait for it.
gpu::NcclUniqueId ExchangeId(const gpu::NcclApi* nccl, const std::string& group,
                             int rank, int64_t timeout_ms) {
  gpu::NcclUniqueId id;
  std::string key = KvKey(group);
  if (rank == 0) {
    Check(gpu::NcclCheck(nccl->GetUniqueId(&id), "ncclGetUniqueId"));
    absl::Status s = internal_kv::Put(kKvNamespace, key,
                                      std::string(id.internal, sizeof(id)));
    if (!s.ok()) {
      throw Error(
          absl::StrCat("collective group \"", group,
                       "\": cannot publish the NCCL unique id: ", s.message()));
    }
    return id;
  }
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    auto v = internal_kv::Get(kKvNamespace, key);
    if (!v.ok()) {
      throw Error(absl::StrCat(
          "collective group \"", group,
          "\": cannot read the NCCL unique id: ", v.status().message()));
    }
    if (v->has_value()) {
      if ((*v)->size() != sizeof(id)) {
        throw Error(absl::StrCat("collective group \"", group, "\": key ", key,
                                 " holds ", (*v)->size(),
                                 " bytes, not an NCCL unique id"));
      }
      std::memcpy(id.internal, (*v)->data(), sizeof(id));
      return id;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      throw Error(absl::StrCat("collective group \"", group,
                               "\": rank 0 did not publish the NCCL ",
                               "unique id (key ", key, ") within ", timeout_ms,
                               " ms; has rank 0 called InitGroup?"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
  }
}

}  // namespace

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kInt8:
    case DType::kUint8:
      return 1;
    case DType::kFloat16:
    case DType::kBFloat16:
      return 2;
    case DType::kInt32:
    case DType::kUint32:
    case DType::kFloat32:
      return 4;
    case DType::kInt64:
    case DType::kUint64:
    case DType::kFloat64:
      return 8;
  }
  throw Error("unknown DType");
}

DType DTypeFromName(const std::string& name) {
  static const std::map<std::string, DType> kNames = {
      {"int8", DType::kInt8},       {"uint8", DType::kUint8},
      {"int32", DType::kInt32},     {"uint32", DType::kUint32},
      {"int64", DType::kInt64},     {"uint64", DType::kUint64},
      {"float16", DType::kFloat16}, {"float32", DType::kFloat32},
      {"float64", DType::kFloat64}, {"bfloat16", DType::kBFloat16}};
  auto it = kNames.find(name);
  if (it == kNames.end()) {
    throw Error("unsupported dtype \"" + name +
                "\" (int8, uint8, int32, uint32, int64, uint64, float16, "
                "bfloat16, float32, float64)");
  }
  return it->second;
}

void InitGroup(int world_size, int rank, const std::string& backend,
               const std::string& group_name, int64_t timeout_ms) {
  if (backend == "cpu") {
    throw Error(
        "collective backend \"cpu\" is Python's (loom.collective); C++ "
        "groups use \"nccl\"");
  }
  if (backend != "nccl") {
    throw Error("unknown collective backend \"" + backend +
                "\": C++ groups use \"nccl\"");
  }
  if (world_size < 1) throw Error("InitGroup: world_size must be >= 1");
  if (rank < 0 || rank >= world_size) {
    throw Error(absl::StrCat("InitGroup: rank ", rank, " is not in [0, ",
                             world_size, ")"));
  }
  if (group_name.empty()) throw Error("InitGroup: empty group name");
  if (IsGroupInitialized(group_name)) {
    throw Error("collective group \"" + group_name +
                "\" is already initialized in this process");
  }
  auto nccl = gpu::Nccl();
  if (!nccl.ok()) Throw(nccl.status());
  auto cuda = gpu::Cuda();
  if (!cuda.ok()) {
    throw Error(
        absl::StrCat("NCCL groups need a GPU: ", cuda.status().message()));
  }
  int devices = 0;
  if (absl::Status s = gpu::CudaCheck((*cuda)->GetDeviceCount(&devices),
                                      "cudaGetDeviceCount");
      !s.ok()) {
    throw Error(absl::StrCat("NCCL groups need a GPU: ", s.message()));
  }
  if (devices == 0) {
    const char* env = std::getenv("CUDA_VISIBLE_DEVICES");
    throw Error(absl::StrCat(
        "NCCL groups need a GPU: this process sees none (CUDA_VISIBLE_DEVICES=",
        env ? env : "(unset)", "); give the actor GPU resources"));
  }

  auto g = std::make_shared<Group>();
  g->name = group_name;
  g->world = world_size;
  g->rank = rank;
  g->nccl = *nccl;
  g->cuda = *cuda;
  Check(gpu::CudaCheck(g->cuda->GetDevice(&g->device), "cudaGetDevice"));
  gpu::NcclUniqueId id = ExchangeId(g->nccl, group_name, rank, timeout_ms);
  try {
    gpu::ScopedDevice on(g->cuda, g->device);
    Check(on.status());
    Check(
        gpu::CudaCheck(g->cuda->StreamCreate(&g->stream), "cudaStreamCreate"));
    Check(gpu::CudaCheck(g->cuda->Malloc(&g->scratch, 4), "cudaMalloc"));
    Check(gpu::NcclCheck(g->nccl->CommInitRank(&g->comm, world_size, id, rank),
                         "ncclCommInitRank"));
  } catch (const Error& e) {
    g->Release();
    if (rank == 0) (void)internal_kv::Del(kKvNamespace, KvKey(group_name));
    throw Error(absl::StrCat("collective group \"", group_name, "\" rank ",
                             rank, ": ", e.what()));
  }
  absl::MutexLock lock(&groups_mu);
  if (!Groups().emplace(group_name, g).second) {
    g->Release();
    throw Error("collective group \"" + group_name +
                "\" is already initialized in this process");
  }
}

void DestroyGroup(const std::string& group_name) {
  std::shared_ptr<Group> g;
  {
    absl::MutexLock lock(&groups_mu);
    auto it = Groups().find(group_name);
    if (it == Groups().end()) return;
    g = it->second;
    Groups().erase(it);
  }
  absl::MutexLock lock(&g->mu);
  g->Release();
  // Best effort: a stale id only matters to a later group of this name.
  if (g->rank == 0) (void)internal_kv::Del(kKvNamespace, KvKey(group_name));
}

bool IsGroupInitialized(const std::string& group_name) {
  absl::MutexLock lock(&groups_mu);
  return Groups().count(group_name) > 0;
}

int GetRank(const std::string& group_name) {
  absl::MutexLock lock(&groups_mu);
  auto it = Groups().find(group_name);
  return it == Groups().end() ? -1 : it->second->rank;
}

int GetWorldSize(const std::string& group_name) {
  absl::MutexLock lock(&groups_mu);
  auto it = Groups().find(group_name);
  return it == Groups().end() ? -1 : it->second->world;
}

void AllReduce(void* data, size_t count, DType dtype, ReduceOp op,
               const std::string& group_name) {
  AllReduce(static_cast<const void*>(data), data, count, dtype, op, group_name);
}

void AllReduce(const void* send, void* recv, size_t count, DType dtype,
               ReduceOp op, const std::string& group_name) {
  CheckPointer(send, count, "AllReduce");
  CheckPointer(recv, count, "AllReduce");
  int t = NcclType(dtype), o = NcclOp(op);
  Run(group_name, "AllReduce", [&](Group& g) {
    return gpu::NcclCheck(
        g.nccl->AllReduce(send, recv, count, t, o, g.comm, g.stream),
        "ncclAllReduce");
  });
}

void Broadcast(void* data, size_t count, DType dtype, int root,
               const std::string& group_name) {
  CheckPointer(data, count, "Broadcast");
  int t = NcclType(dtype);
  Run(group_name, "Broadcast", [&](Group& g) {
    CheckRank(g, root, "Broadcast");
    return gpu::NcclCheck(
        g.nccl->Broadcast(data, data, count, t, root, g.comm, g.stream),
        "ncclBroadcast");
  });
}

void Reduce(void* data, size_t count, DType dtype, int root, ReduceOp op,
            const std::string& group_name) {
  CheckPointer(data, count, "Reduce");
  int t = NcclType(dtype), o = NcclOp(op);
  Run(group_name, "Reduce", [&](Group& g) {
    CheckRank(g, root, "Reduce");
    return gpu::NcclCheck(
        g.nccl->Reduce(data, data, count, t, o, root, g.comm, g.stream),
        "ncclReduce");
  });
}

void AllGather(const void* send, void* recv, size_t count, DType dtype,
               const std::string& group_name) {
  CheckPointer(send, count, "AllGather");
  CheckPointer(recv, count, "AllGather");
  int t = NcclType(dtype);
  Run(group_name, "AllGather", [&](Group& g) {
    return gpu::NcclCheck(
        g.nccl->AllGather(send, recv, count, t, g.comm, g.stream),
        "ncclAllGather");
  });
}

void ReduceScatter(const void* send, void* recv, size_t count, DType dtype,
                   ReduceOp op, const std::string& group_name) {
  CheckPointer(send, count, "ReduceScatter");
  CheckPointer(recv, count, "ReduceScatter");
  int t = NcclType(dtype), o = NcclOp(op);
  Run(group_name, "ReduceScatter", [&](Group& g) {
    return gpu::NcclCheck(
        g.nccl->ReduceScatter(send, recv, count, t, o, g.comm, g.stream),
        "ncclReduceScatter");
  });
}

void Send(const void* data, size_t count, DType dtype, int peer,
          const std::string& group_name) {
  CheckPointer(data, count, "Send");
  int t = NcclType(dtype);
  Run(group_name, "Send", [&](Group& g) {
    CheckRank(g, peer, "Send");
    if (peer == g.rank) throw Error("Send: a rank cannot send to itself");
    return gpu::NcclCheck(g.nccl->Send(data, count, t, peer, g.comm, g.stream),
                          "ncclSend");
  });
}

void Recv(void* data, size_t count, DType dtype, int peer,
          const std::string& group_name) {
  CheckPointer(data, count, "Recv");
  int t = NcclType(dtype);
  Run(group_name, "Recv", [&](Group& g) {
    CheckRank(g, peer, "Recv");
    if (peer == g.rank) throw Error("Recv: a rank cannot receive from itself");
    return gpu::NcclCheck(g.nccl->Recv(data, count, t, peer, g.comm, g.stream),
                          "ncclRecv");
  });
}

void Barrier(const std::string& group_name) {
  Run(group_name, "Barrier", [&](Group& g) {
    return gpu::NcclCheck(
        g.nccl->AllReduce(g.scratch, g.scratch, 1, gpu::kNcclInt32,
                          gpu::kNcclSum, g.comm, g.stream),
        "ncclAllReduce");
  });
}

void AllReduce(CudaBuffer& buffer, DType dtype, ReduceOp op,
               const std::string& group_name) {
  size_t n = Elements(buffer, dtype, "AllReduce");
  AllReduce(buffer.data(), n, dtype, op, group_name);
}

void Broadcast(CudaBuffer& buffer, DType dtype, int root,
               const std::string& group_name) {
  size_t n = Elements(buffer, dtype, "Broadcast");
  Broadcast(buffer.data(), n, dtype, root, group_name);
}

void AllGather(const CudaBuffer& send, CudaBuffer& recv, DType dtype,
               const std::string& group_name) {
  size_t n = Elements(send, dtype, "AllGather");
  size_t world = static_cast<size_t>(GetWorldSize(group_name));
  if (recv.size() != send.size() * world) {
    throw Error(absl::StrCat("AllGather: recv holds ", recv.size(),
                             " bytes; it needs world_size (", world,
                             ") x send (", send.size(), ")"));
  }
  AllGather(send.data(), recv.data(), n, dtype, group_name);
}

void ReduceScatter(const CudaBuffer& send, CudaBuffer& recv, DType dtype,
                   ReduceOp op, const std::string& group_name) {
  size_t n = Elements(recv, dtype, "ReduceScatter");
  size_t world = static_cast<size_t>(GetWorldSize(group_name));
  if (send.size() != recv.size() * world) {
    throw Error(absl::StrCat("ReduceScatter: send holds ", send.size(),
                             " bytes; it needs world_size (", world,
                             ") x recv (", recv.size(), ")"));
  }
  ReduceScatter(send.data(), recv.data(), n, dtype, op, group_name);
}

}  // namespace loom::collective

namespace loom::gpu {
namespace {

using collective::DType;
using collective::ReduceOp;

// Runs `calls` between ncclGroupStart and ncclGroupEnd (ended even when a
// call fails).
absl::Status Fused(const collective::Group& g,
                   const std::function<absl::Status()>& calls) {
  absl::Status s = NcclCheck(g.nccl->GroupStart(), "ncclGroupStart");
  if (!s.ok()) return s;
  absl::Status inner = calls();
  s = NcclCheck(g.nccl->GroupEnd(), "ncclGroupEnd");
  return inner.ok() ? s : inner;
}

}  // namespace

void AllGatherList(const void* send, const std::vector<void*>& recv,
                   size_t count, DType dtype, const std::string& group_name) {
  collective::CheckPointer(send, count, "AllGather");
  for (void* r : recv) collective::CheckPointer(r, count, "AllGather");
  int t = collective::NcclType(dtype);
  collective::Run(group_name, "AllGather", [&](collective::Group& g) {
    if (recv.size() != static_cast<size_t>(g.world)) {
      throw Error(absl::StrCat("AllGather: ", recv.size(),
                               " outputs; the group has ", g.world, " ranks"));
    }
    return Fused(g, [&] {
      for (int i = 0; i < g.world; ++i) {
        const void* from = i == g.rank ? send : recv[i];
        absl::Status s = NcclCheck(
            g.nccl->Broadcast(from, recv[i], count, t, i, g.comm, g.stream),
            "ncclBroadcast");
        if (!s.ok()) return s;
      }
      return absl::OkStatus();
    });
  });
}

void ReduceScatterList(const std::vector<const void*>& send, void* recv,
                       size_t count, DType dtype, ReduceOp op,
                       const std::string& group_name) {
  collective::CheckPointer(recv, count, "ReduceScatter");
  for (const void* p : send)
    collective::CheckPointer(p, count, "ReduceScatter");
  int t = collective::NcclType(dtype), o = collective::NcclOp(op);
  collective::Run(group_name, "ReduceScatter", [&](collective::Group& g) {
    if (send.size() != static_cast<size_t>(g.world)) {
      throw Error(absl::StrCat("ReduceScatter: ", send.size(),
                               " inputs; the group has ", g.world, " ranks"));
    }
    return Fused(g, [&] {
      for (int i = 0; i < g.world; ++i) {
        // recv is only written on the root (rank i == this rank).
        absl::Status s =
            NcclCheck(g.nccl->Reduce(send[i], i == g.rank ? recv : nullptr,
                                     count, t, o, i, g.comm, g.stream),
                      "ncclReduce");
        if (!s.ok()) return s;
      }
      return absl::OkStatus();
    });
  });
}

void SynchronizeStream(uintptr_t stream) {
  if (stream == 0) return;
  auto cuda = Cuda();
  if (!cuda.ok()) throw Error(std::string(cuda.status().message()));
  absl::Status s = CudaCheck(
      (*cuda)->StreamSynchronize(reinterpret_cast<CudaStream>(stream)),
      "cudaStreamSynchronize");
  if (!s.ok()) throw Error(std::string(s.message()));
}

}  // namespace loom::gpu
