#include "runtime/gpu/nccl_api.h"

#include <dlfcn.h>

#include <mutex>

#include "absl/strings/str_cat.h"
#include "runtime/gpu/cuda_api.h"

namespace loom::gpu {
namespace {

constexpr const char* kNcclNames[] = {"libnccl.so.2", "libnccl.so",
                                      "/usr/local/cuda/lib64/libnccl.so.2"};

absl::StatusOr<const NcclApi*> Load() {
  std::string error;
  void* lib = OpenFirst("LOOM_NCCL_LIB", kNcclNames,
                        sizeof(kNcclNames) / sizeof(kNcclNames[0]), &error);
  if (lib == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("NCCL is not available: ", error));
  }
  static NcclApi api;
  std::string missing;
  Bind(lib, "ncclGetUniqueId", &api.GetUniqueId, &missing);
  Bind(lib, "ncclCommInitRank", &api.CommInitRank, &missing);
  Bind(lib, "ncclCommDestroy", &api.CommDestroy, &missing);
  Bind(lib, "ncclCommAbort", &api.CommAbort, &missing);
  Bind(lib, "ncclAllReduce", &api.AllReduce, &missing);
  Bind(lib, "ncclBroadcast", &api.Broadcast, &missing);
  Bind(lib, "ncclReduce", &api.Reduce, &missing);
  Bind(lib, "ncclAllGather", &api.AllGather, &missing);
  Bind(lib, "ncclReduceScatter", &api.ReduceScatter, &missing);
  Bind(lib, "ncclSend", &api.Send, &missing);
  Bind(lib, "ncclRecv", &api.Recv, &missing);
  Bind(lib, "ncclGroupStart", &api.GroupStart, &missing);
  Bind(lib, "ncclGroupEnd", &api.GroupEnd, &missing);
  Bind(lib, "ncclGetErrorString", &api.GetErrorString, &missing);
  Bind(lib, "ncclGetLastError", &api.GetLastError, nullptr);  // NCCL >= 2.13
  if (!missing.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("NCCL is not available: the library lacks ", missing,
                     " (NCCL 2.7 or newer is needed)"));
  }
  return &api;
}

}  // namespace

absl::StatusOr<const NcclApi*> Nccl() {
  static absl::StatusOr<const NcclApi*>* loaded = nullptr;
  static std::once_flag once;
  std::call_once(once,
                 [] { loaded = new absl::StatusOr<const NcclApi*>(Load()); });
  return *loaded;
}

absl::Status NcclCheck(int rc, const std::string& what) {
  if (rc == 0) return absl::OkStatus();
  auto nccl = Nccl();
  std::string text = "NCCL error";
  if (nccl.ok()) {
    if (const char* s = (*nccl)->GetErrorString(rc)) text = s;
    if ((*nccl)->GetLastError != nullptr) {
      const char* last = (*nccl)->GetLastError(nullptr);
      if (last != nullptr && *last != '\0') absl::StrAppend(&text, ": ", last);
    }
  }
  return absl::InternalError(
      absl::StrCat(what, ": ", text, " (NCCL error ", rc, ")"));
}

}  // namespace loom::gpu
