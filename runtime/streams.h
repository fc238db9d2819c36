// runtime/streams.h
//
// Streaming generators (num_returns="streaming"). The executor reports each
// item it yields to the caller as it comes (ReportStreamItem); the caller
// owns every item, as it owns a task's returns, and hands them out in order
// while the task still runs. Item i of task T is the object
// ObjectId::ForReturn(T, i + 2); the task's one return (index 1) is the
// item count, and an error there (the generator raised, or the worker died
// with no retry left) ends the stream at its position.
//
// Backpressure: the owner answers a report only once the consumer has taken
// all but `window` of the items before it, and an executor keeps at most
// `window` reports unanswered, so a producer runs at most 2 * window items
// ahead of its consumer. A retry reports from item 0 again; the owner keeps
// the first copy of each item, so the consumer sees each once.
//
//   Owner:    table.Open(task, 16); ... table.Wait(task, 0, until);
//             ObjectId item = table.Take(task, 0);
//   Executor: StreamWriter w(cw, spec); w.Write(0, bytes, false, {});
//             w.Flush();
#ifndef LOOM_RUNTIME_STREAMS_H_
#define LOOM_RUNTIME_STREAMS_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/worker.pb.h"
#include "runtime/object_table.h"
#include "src/common/ids.h"

namespace loom {

class CoreWorker;

// How far a producer runs ahead by default (TaskSpec.stream_window).
inline constexpr int64_t kDefaultStreamWindow = 16;

inline ObjectId StreamItemId(const TaskId& task, int64_t index) {
  return ObjectId::ForReturn(task, static_cast<uint32_t>(index + 2));
}

// Owner side: the streams of the tasks this process called. Thread-safe.
class StreamTable {
 public:
  explicit StreamTable(ObjectTable* objects) : objects_(objects) {}

  // Before the task is submitted; window as TaskSpec.stream_window.
  void Open(const TaskId& task, int64_t window);
  // The task's return is ready: no item comes after those received.
  void Ended(const TaskId& task);
  // Item `index` of `task` arrived (`self`: this core worker's address).
  // `answer(stop)` runs once the executor may go on (now, or when the
  // consumer catches up); stop when nobody will read it.
  void Report(const TaskId& task, const rpc::ReportStreamItemRequest& req,
              const std::string& self, std::function<void(bool stop)> answer);
  enum class Next { kItem, kEnd, kTimeout };
  // Waits until item `index` has arrived or the stream has ended.
  Next Wait(const TaskId& task, int64_t index, absl::Time until);
  // Takes item `index` (Wait said kItem): the consumer has read up to it.
  // The stream's reference on it passes to the caller, who drops it after
  // taking its own.
  ObjectId Take(const TaskId& task, int64_t index);
  // The consumer is gone: unread items are freed, the producer stops.
  void Close(const TaskId& task);

 private:
  struct Stream {
    int64_t window = kDefaultStreamWindow;
    int64_t taken = 0;  // items the consumer has read (in order)
    bool ended = false;
    bool closed = false;
    absl::flat_hash_set<int64_t> have;      // received, not yet taken
    absl::flat_hash_set<int64_t> arriving;  // being entered in the table
    // Reports held back for backpressure: (index, answer).
    std::vector<std::pair<int64_t, std::function<void(bool)>>> held;
  };
  // The held answers the consumer's progress lets go.
  static std::vector<std::function<void(bool)>> Release(Stream& s, bool all);

  // Enters an item in the object table with one reference (the stream's).
  void Enter(const ObjectId& id, const rpc::ReportStreamItemRequest& req,
             const std::string& self);

  ObjectTable* objects_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<TaskId, Stream> streams_ ABSL_GUARDED_BY(mu_);
};

// Executor side: reports one task's items to its caller. Not thread-safe
// (one producer); answers arrive on gRPC threads.
class StreamWriter {
 public:
  StreamWriter(CoreWorker* cw, const rpc::TaskSpec& spec);
  ~StreamWriter();
  // Waits up to `timeout` until fewer than `window` reports are unanswered
  // or the stream stopped; false on timeout.
  bool WaitRoom(absl::Duration timeout);
  // Sends item `index` (inline bytes, or sealed in this node's store for
  // the caller). False once the consumer dropped the stream or the caller
  // is gone: stop producing.
  bool Write(int64_t index, std::string value, bool in_store,
             const std::vector<ObjectId>& contained);
  // Waits until every report is answered; false as for Write.
  bool Flush();

 private:
  struct State {
    absl::Mutex mu;
    int64_t unanswered ABSL_GUARDED_BY(mu) = 0;
    bool stop ABSL_GUARDED_BY(mu) = false;
  };
  CoreWorker* cw_;
  const rpc::TaskSpec& spec_;
  std::string owner_;
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace loom

#endif  // LOOM_RUNTIME_STREAMS_H_
