// runtime/object_table.h
//
// ObjectTable: the values a core worker owns or has received, each ready or
// pending, with its local reference count. Readers block in Get/Wait until
// values arrive; the submitter registers callbacks to resolve arguments.
//
//   table.AddPending(id);
//   table.OnReady(id, [] { ... });          // runs when the value lands
//   table.SetValue(id, bytes);              // from the push reply
//   auto results = table.Get({id}, absl::InfiniteFuture());
#ifndef LOOM_RUNTIME_OBJECT_TABLE_H_
#define LOOM_RUNTIME_OBJECT_TABLE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/common.pb.h"
#include "src/common/ids.h"

namespace loom {

struct ObjectResult {
  std::shared_ptr<const std::string> value;  // set when ok and inline
  std::optional<rpc::ErrorInfo> error;       // set when the task failed
  std::optional<NodeId> store_node;  // set when ok and in that node's store
};

// Thread-safe. A mutex is cheaper here than a loop hop: readers block on it.
class ObjectTable {
 public:
  void AddPending(const ObjectId& id);
  void SetValue(const ObjectId& id, std::string value);
  void SetError(const ObjectId& id, rpc::ErrorInfo error);
  // The value is sealed in the object store of `node`.
  void SetInStore(const ObjectId& id, const NodeId& node);
  // Runs (outside the lock) for each freed object whose value is in a store.
  void set_on_free(std::function<void(const ObjectId&, const NodeId&)> fn) {
    on_free_ = std::move(fn);
  }
  // Runs `fn` (on the thread that makes the object ready, or here if it is
  // ready or unknown already).
  void OnReady(const ObjectId& id, std::function<void()> fn);
  std::optional<ObjectResult> TryGet(const ObjectId& id) const;
  bool AllReady(const std::vector<ObjectId>& ids) const;

  // Waits until all are ready or `deadline`; nullopt on timeout. An unknown
  // id yields an error result.
  std::optional<std::vector<ObjectResult>> Get(const std::vector<ObjectId>& ids,
                                               absl::Time deadline);
  // Waits until `num_ready` are ready or `deadline`; ready flags per id.
  std::vector<bool> Wait(const std::vector<ObjectId>& ids, size_t num_ready,
                         absl::Time deadline);

  // References to an id this table does not hold are ignored.
  void AddRef(const ObjectId& id);
  void RemoveRef(const ObjectId& id);
  size_t size() const;

 private:
  struct Entry {
    bool ready = false;
    ObjectResult result;
    int64_t refs = 0;
    bool released = false;  // refs fell to zero while pending
    std::vector<std::function<void()>> on_ready;
  };
  void Resolve(const ObjectId& id, ObjectResult result);
  bool ReadyLocked(const ObjectId& id) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  void Freed(const ObjectId& id, const ObjectResult& r) {
    if (r.store_node && on_free_) on_free_(id, *r.store_node);
  }

  std::function<void(const ObjectId&, const NodeId&)> on_free_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<ObjectId, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

rpc::ErrorInfo MakeError(rpc::ErrorInfo::Kind kind, std::string message,
                         std::string task_name = "", std::string type = "");

}  // namespace loom

#endif  // LOOM_RUNTIME_OBJECT_TABLE_H_
