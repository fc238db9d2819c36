// runtime/lineage.h
//
// Lineage: what an owner keeps to rebuild a lost object. For each task
// that returned a value into an object store, the task's spec, kept while
// any of its return objects is referenced; each entry also holds one
// reference on the in-store arguments it read, so that they (and their own
// lineage) stay known while it may need them. The specs together stay
// under `max_bytes`: the oldest are evicted first, and an evicted task's
// objects say so when they are lost. Inline values never need lineage:
// they live in the owner's memory.
//
//   Lineage lineage(64 << 20);
//   if (lineage.Record(spec, key, &objects)) { /* keeps spec's arg refs */ }
//   auto retry = lineage.TakeRetry(task);  // the spec, its attempt advanced
//   lineage.OnFreed(return_id);            // from the table's free hook
#ifndef LOOM_RUNTIME_LINEAGE_H_
#define LOOM_RUNTIME_LINEAGE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "proto/worker.pb.h"
#include "runtime/object_table.h"
#include "src/common/ids.h"

namespace loom {

// Default bound on the bytes of lineage one owner keeps.
inline constexpr int64_t kDefaultMaxLineageBytes = 64 << 20;
// The bound: `configured` when it is >= 0, else $LOOM_MAX_LINEAGE_BYTES,
// else kDefaultMaxLineageBytes.
int64_t MaxLineageBytes(int64_t configured);

// Thread-safe. Objects' references are taken and dropped outside the lock.
class Lineage {
 public:
  Lineage(int64_t max_bytes, ObjectTable* objects);
  ~Lineage();

  // A task whose return is in a store succeeded: keeps `spec` (and `key`,
  // its submitter's lease key) and takes one reference on each of its
  // in-store arguments. False, taking nothing, when the task has an entry
  // already (a re-execution, or a task marked by Unrecoverable).
  bool Record(const rpc::TaskSpec& spec, const std::string& key);
  // A task whose in-store returns cannot be rebuilt, and why ("it is an
  // actor task's result").
  void Unrecoverable(const TaskId& task, int num_returns, std::string why);
  // One return object of `id.Task()` is freed: the entry goes with the last.
  void OnFreed(const ObjectId& id);

  struct Retry {
    rpc::TaskSpec spec;  // attempt advanced
    std::string key;
  };
  // For re-running `task`: its spec with the attempt advanced (and counted),
  // or FailedPrecondition saying why it cannot run again (no lineage, evicted,
  // retries used up, unrecoverable).
  absl::StatusOr<Retry> TakeRetry(const TaskId& task);

  int64_t bytes() const;
  size_t size() const;
  int64_t max_bytes() const { return max_bytes_; }

 private:
  struct Entry {
    rpc::TaskSpec spec;  // empty once evicted or when unrecoverable
    std::string key;
    int64_t bytes = 0;
    int live = 0;          // return objects still in the table
    bool evicted = false;  // spec dropped to stay under max_bytes
    std::string unrecoverable;
  };
  // Evicts the oldest entries until under max_bytes; appends the arguments
  // whose references they held to `drop`.
  void EvictLocked(std::vector<ObjectId>* drop)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void HeldArgs(const rpc::TaskSpec& spec, std::vector<ObjectId>* out);
  void Drop(const std::vector<ObjectId>& ids);

  const int64_t max_bytes_;
  ObjectTable* const objects_;
  std::atomic<int64_t> entries_{0};  // OnFreed's fast path
  mutable absl::Mutex mu_;
  absl::flat_hash_map<TaskId, Entry> tasks_ ABSL_GUARDED_BY(mu_);
  std::deque<TaskId> order_ ABSL_GUARDED_BY(mu_);  // oldest first
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace loom

#endif  // LOOM_RUNTIME_LINEAGE_H_
