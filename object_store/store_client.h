// object_store/store_client.h
//
// ObjectStoreClient: a process's connection to its node's object store. It
// maps the arena once (the memfd arrives on connect) and then creates,
// seals and reads objects by offset in its own mapping: Get returns views
// into shared memory, pinned until Release. No copies.
//
//   auto client = ObjectStoreClient::Connect(session_dir + "/sockets/store");
//   uint8_t* dst = *(*client)->Create(id, size, 0);
//   std::memcpy(dst, data, size);
//   (*client)->Seal(id);
//   auto views = (*client)->Get({id}, /*timeout_ms=*/1000);
//   ... (*views)[0]->data ...
//   (*client)->Release(id);
#ifndef LOOM_OBJECT_STORE_STORE_CLIENT_H_
#define LOOM_OBJECT_STORE_STORE_CLIENT_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "object_store/arena.h"
#include "src/common/ids.h"

namespace loom {

namespace rpc {
class StoreRequest;
class StoreReply;
}  // namespace rpc

struct ObjectView {
  const uint8_t* data = nullptr;
  uint64_t data_size = 0;
  const uint8_t* metadata = nullptr;
  uint64_t metadata_size = 0;
};

struct StoreObjectInfo {
  ObjectId id;
  uint64_t size = 0;
  std::string owner;
  bool primary = false;
  bool pinned = false;
};

struct StoreUsage {
  uint64_t capacity = 0, used = 0, objects = 0, pinned = 0;
  uint64_t spilled_bytes = 0, spilled_objects = 0;
  std::vector<StoreObjectInfo> largest;  // up to 10, largest first
};

// Thread-safe: one request at a time on the connection.
class ObjectStoreClient {
 public:
  static absl::StatusOr<std::unique_ptr<ObjectStoreClient>> Connect(
      const std::string& socket_path);
  ~ObjectStoreClient();

  // Reserves data_size + metadata_size bytes; returns where to write them
  // (data first, then metadata). The object is invisible until Seal.
  // `owner` (host:port of the owner's core worker) defaults to set_owner's.
  absl::StatusOr<uint8_t*> Create(const ObjectId& id, uint64_t data_size,
                                  uint64_t metadata_size, bool primary = true,
                                  const std::string& owner = "");
  absl::Status Seal(const ObjectId& id);
  absl::Status Abort(const ObjectId& id);
  // Waits until every id is sealed, or timeout_ms (< 0: no limit); an
  // object missing then is nullopt. Each view is pinned until Release.
  absl::StatusOr<std::vector<std::optional<ObjectView>>> Get(
      const std::vector<ObjectId>& ids, int64_t timeout_ms);
  absl::Status Release(const ObjectId& id);
  absl::Status Delete(const ObjectId& id);
  // Deletes every object of `job` that `owner` owns here; returns their ids.
  absl::StatusOr<std::vector<ObjectId>> DeleteOwnedBy(const std::string& owner,
                                                      const JobId& job);
  absl::StatusOr<StoreUsage> Usage();

  const Arena& arena() const { return *arena_; }
  // Recorded as the owner of what this client creates, unless Create names
  // one (`loom memory`, DeleteOwnedBy).
  void set_owner(std::string owner) { owner_ = std::move(owner); }

 private:
  ObjectStoreClient(int fd, std::unique_ptr<Arena> arena)
      : fd_(fd), arena_(std::move(arena)) {}
  absl::StatusOr<std::unique_ptr<rpc::StoreReply>> Call(rpc::StoreRequest& req);

  absl::Mutex mu_;
  int fd_;
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::unique_ptr<Arena> arena_;
  std::string owner_;
};

}  // namespace loom

#endif  // LOOM_OBJECT_STORE_STORE_CLIENT_H_
