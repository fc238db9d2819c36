#include "runtime/internal_kv.h"

#include "runtime/core_worker.h"
#include "runtime/raylet_client.h"

namespace loom::internal_kv {
namespace {

absl::StatusOr<RayletClient*> Client() {
  CoreWorker* cw = GlobalCoreWorker();
  if (cw == nullptr || cw->raylet_client() == nullptr) {
    return absl::FailedPreconditionError("loom::Init() has not been called");
  }
  return cw->raylet_client();
}

}  // namespace

absl::Status Put(const std::string& ns, const std::string& key,
                 const std::string& value) {
  auto client = Client();
  if (!client.ok()) return client.status();
  return (*client)->KvPut(ns, key, value);
}

absl::StatusOr<bool> PutIfAbsent(const std::string& ns, const std::string& key,
                                 const std::string& value) {
  auto client = Client();
  if (!client.ok()) return client.status();
  return (*client)->KvPutIfAbsent(ns, key, value);
}

absl::StatusOr<std::optional<std::string>> Get(const std::string& ns,
                                               const std::string& key) {
  auto client = Client();
  if (!client.ok()) return client.status();
  return (*client)->KvGet(ns, key);
}

absl::StatusOr<std::vector<std::string>> Keys(const std::string& ns,
                                              const std::string& prefix) {
  auto client = Client();
  if (!client.ok()) return client.status();
  return (*client)->KvKeys(ns, prefix);
}

absl::StatusOr<bool> Del(const std::string& ns, const std::string& key) {
  auto client = Client();
  if (!client.ok()) return client.status();
  return (*client)->KvDel(ns, key);
}

}  // namespace loom::internal_kv
