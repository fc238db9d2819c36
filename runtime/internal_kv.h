// runtime/internal_kv.h
//
// The head's key-value store, reached through this process's core worker
// (driver or worker): for runtime parts that rendezvous through it, such
// as NCCL groups exchanging their unique id.
//
//   absl::Status s = internal_kv::Put("fn", "collective:nccl:g", id);
//   auto v = internal_kv::Get("fn", "collective:nccl:g");  // nullopt: none
#ifndef LOOM_RUNTIME_INTERNAL_KV_H_
#define LOOM_RUNTIME_INTERNAL_KV_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace loom::internal_kv {

// Each fails with FailedPrecondition when loom::Init() has not been called
// (no core worker in this process), or with the RPC's error.
absl::Status Put(const std::string& ns, const std::string& key,
                 const std::string& value);
// Puts only when the key is absent (an atomic claim); whether it did.
absl::StatusOr<bool> PutIfAbsent(const std::string& ns, const std::string& key,
                                 const std::string& value);
absl::StatusOr<std::optional<std::string>> Get(const std::string& ns,
                                               const std::string& key);
absl::StatusOr<std::vector<std::string>> Keys(const std::string& ns,
                                              const std::string& prefix);
// Whether the key was there.
absl::StatusOr<bool> Del(const std::string& ns, const std::string& key);

}  // namespace loom::internal_kv

#endif  // LOOM_RUNTIME_INTERNAL_KV_H_
