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
//
// Borrowed entries are objects another core worker owns: the table asks
// for their value (on_fetch) when first needed, and reports (on_release)
// when the last local reference is gone. An entry may contain others (refs
// serialized in its value): it holds one reference on each while it lives.
#ifndef LOOM_RUNTIME_OBJECT_TABLE_H_
#define LOOM_RUNTIME_OBJECT_TABLE_H_

#include <atomic>
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
  // Runs (outside the lock) for each object owned here that is freed.
  void set_on_owned_free(std::function<void(const ObjectId&)> fn) {
    on_owned_free_ = std::move(fn);
  }
  // Runs (outside the lock) for each freed object whose value is in a store.
  void set_on_free(std::function<void(const ObjectId&, const NodeId&)> fn) {
    on_free_ = std::move(fn);
  }
  // Borrowed objects. The hooks run outside the lock.
  void set_on_fetch(
      std::function<void(const ObjectId&, const std::string& owner)> fn) {
    on_fetch_ = std::move(fn);
  }
  void set_on_release(
      std::function<void(const ObjectId&, const std::string&, int64_t units)>
          fn) {
    on_release_ = std::move(fn);
  }
  // Adds a borrowed entry with no references; true when it is new (the
  // caller registers it with the owner, then calls Registered).
  bool AddBorrowed(const ObjectId& id, const std::string& owner);
  void Registered(const ObjectId& id, int64_t units);
  // A borrow unit the owner already counts for us (an executor registered
  // it): one more registration and one more reference.
  void AddBorrowedUnit(const ObjectId& id, const std::string& owner);
  // The owner's address of a borrowed entry; empty when owned here (or
  // unknown).
  std::string OwnerOf(const ObjectId& id) const;
  // `id` holds one reference on each of `inner` (which the caller took)
  // until it is freed; when `id` is gone already they are dropped at once.
  void SetContained(const ObjectId& id, std::vector<ObjectId> inner);

  // Runs `fn` (on the thread that makes the object ready, or here if it is
  // ready or unknown already).
  void OnReady(const ObjectId& id, std::function<void()> fn);
  std::optional<ObjectResult> TryGet(const ObjectId& id) const;
  bool AllReady(const std::vector<ObjectId>& ids) const;

  // Waits until all are ready or `deadline`; nullopt on timeout. An unknown
  // id yields an error result. With `stop_at_error`, it returns as soon as
  // one of them holds an error: each one still pending then holds that same
  // error, so that the caller raises it without waiting for the rest.
  std::optional<std::vector<ObjectResult>> Get(const std::vector<ObjectId>& ids,
                                               absl::Time deadline,
                                               bool stop_at_error = false);
  // Where a wait for a long list stopped, so that the next wait (of the
  // same list, its refs still held) resumes there: the ready ones before
  // `cursor` are not looked at again. `failed`: one of them holds an error.
  struct Progress {
    size_t cursor = 0;
    int64_t errors_seen = -1;
    bool failed = false;
  };
  // Waits until all are ready (or, with `stop_at_error`, one failed) or
  // `deadline`; true when done. Get in slices costs O(n) in all this way.
  bool WaitReady(const std::vector<ObjectId>& ids, Progress* progress,
                 absl::Time deadline, bool stop_at_error);
  // Waits until `num_ready` are ready or `deadline`; ready flags per id.
  std::vector<bool> Wait(const std::vector<ObjectId>& ids, size_t num_ready,
                         absl::Time deadline);

  // Makes a ready object pending again (it is being rebuilt): true when it
  // was ready and, given `node`, in that node's store. Readers wait anew.
  bool Unready(const ObjectId& id, const std::optional<NodeId>& node);
  // Makes every object still pending an error (the process shuts down).
  void FailPending(const rpc::ErrorInfo& error);
  // References to an id this table does not hold are ignored (false).
  bool AddRef(const ObjectId& id);
  void RemoveRef(const ObjectId& id);
  // The references counted on an object owned here (borrow units
  // included); nullopt when it is not held, or borrowed from elsewhere.
  std::optional<int64_t> OwnedRefs(const ObjectId& id) const;
  size_t size() const;

 private:
  struct Entry {
    bool ready = false;
    ObjectResult result;
    int64_t refs = 0;
    bool released = false;  // refs fell to zero while pending
    std::vector<std::function<void()>> on_ready;
    std::string owner;          // set: borrowed from the core worker there
    int64_t registrations = 0;  // borrow units we hold at the owner
    bool fetching = false;      // the owner was asked for the value
    std::vector<ObjectId> contained;
  };
  void Resolve(const ObjectId& id, ObjectResult result);
  bool ReadyLocked(const ObjectId& id) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The error of a ready entry that holds one; null otherwise.
  const rpc::ErrorInfo* ErrorLocked(const ObjectId& id) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Asks owners for the borrowed values among `ids` not yet asked for.
  void Fetch(const std::vector<ObjectId>& ids);
  // Erases a freed entry and says so (outside the lock: Freed).
  void Freed(const ObjectId& id, Entry e);
  // Erases it, and shrinks the table when it is mostly empty.
  void EraseLocked(absl::flat_hash_map<ObjectId, Entry>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::function<void(const ObjectId&, const NodeId&)> on_free_;
  std::function<void(const ObjectId&, const std::string&)> on_fetch_;
  // Borrowed entries in the table: Get and Wait skip the fetch pass when
  // there are none (the common case).
  std::atomic<int64_t> borrowed_{0};
  std::function<void(const ObjectId&)> on_owned_free_;
  std::function<void(const ObjectId&, const std::string&, int64_t)> on_release_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<ObjectId, Entry> entries_ ABSL_GUARDED_BY(mu_);
  bool AwaitReadyLocked(const std::vector<ObjectId>& ids, Progress* progress,
                        absl::Time deadline, bool stop_at_error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Entries that became ready with an error, ever: a reader that stops at
  // errors looks for one among its ids only when this moves.
  int64_t errors_ ABSL_GUARDED_BY(mu_) = 0;
};

rpc::ErrorInfo MakeError(rpc::ErrorInfo::Kind kind, std::string message,
                         std::string task_name = "", std::string type = "");

}  // namespace loom

#endif  // LOOM_RUNTIME_OBJECT_TABLE_H_
