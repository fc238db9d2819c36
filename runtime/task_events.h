// runtime/task_events.h
//
// TaskEvents: what this core worker sees of tasks, for the head's state API
// (docs/observability.md). As an owner: submitted, arguments ready, pushed,
// finished or failed (retried or not); as an executor: when it took the
// task, the run, and the end. Coalesced per task attempt and sent to the
// head (Gcs.ReportTaskEvents) at most once per `interval`, off the task's
// path; a timer runs only while something waits to be sent. Off with
// $LOOM_TASK_EVENTS=0.
//
//   TaskEvents events({.loop = &loop, .clients = &clients, .head = gcs});
//   events.Record(spec, TaskEvents::kSubmitted);
//   events.Record(spec, TaskEvents::kFailed, &error, /*retried=*/true);
//   events.Shutdown(absl::Seconds(1));  // sends what is left
//
// Thread-safe.
#ifndef LOOM_RUNTIME_TASK_EVENTS_H_
#define LOOM_RUNTIME_TASK_EVENTS_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/gcs.pb.h"
#include "src/common/calls_in_flight.h"
#include "src/common/client_pool.h"
#include "src/common/event_loop.h"
#include "src/common/ids.h"

namespace loom {

class TaskEvents {
 public:
  struct Options {
    EventLoop* loop = nullptr;
    ClientPool* clients = nullptr;
    std::string head;  // host:port[,standby...]; empty: record nothing
    absl::Duration interval = absl::Seconds(1);
    // Task attempts buffered between reports; past it events are dropped
    // and the next report says how many.
    size_t max_buffered = 100000;
    // Set on what this process reports as an executor.
    NodeId node;
    WorkerId worker;
    int64_t pid = 0;
    // A worker's raylet (host:port): reports go to the head through it, so
    // the worker holds no connection to the head for them. Empty (drivers):
    // straight to the head.
    std::string relay;
  };
  enum Kind {
    kSubmitted,
    kArgsReady,
    kPushed,
    kExecStart,
    kRunStart,
    kRunEnd,
    kExecEnd,
    kFinished,
    kFailed
  };
  // Off when options.head is empty or $LOOM_TASK_EVENTS is "0".
  explicit TaskEvents(Options options);
  ~TaskEvents();

  bool enabled() const { return enabled_; }
  // Now, as events carry it: microseconds since the epoch.
  static int64_t Now();
  // `error`: with kFailed, why; `retried`: the attempt failed and the task
  // runs again.
  void Record(const rpc::TaskSpec& spec, Kind kind,
              const rpc::ErrorInfo* error = nullptr, bool retried = false);
  // Several at once, each at its time (one lock for all): what an executor
  // measured while it ran the task, say.
  void RecordAt(const rpc::TaskSpec& spec,
                std::initializer_list<std::pair<Kind, int64_t>> times,
                const rpc::ErrorInfo* error = nullptr, bool retried = false);
  // Sends what is buffered (waiting up to `timeout` for the head), then
  // records nothing more.
  void Shutdown(absl::Duration timeout);

 private:
  // What the batch holds of one task attempt: plain values, so that
  // recording allocates nothing (protos are made when the batch is sent).
  struct Pending {
    uint8_t type = 0;
    bool retried = false;
    bool executed = false;  // holds this process's executor stamps
    uint32_t name = 0;      // names_
    int32_t error = -1;     // errors_
    JobId job;
    ActorId actor;
    int64_t times[kFailed + 1] = {};
  };
  using Key = std::pair<TaskId, int32_t>;  // task, attempt

  void Send();
  // use(stub) with the stub reports go to: the relay's, else the head's.
  template <typename Use>
  void WithStub(Use use);
  // The batch's entry for the spec's attempt, or null when the batch is
  // full (counted as dropped).
  Pending* EntryFor(const rpc::TaskSpec& spec, const TaskId& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The batch as a request (empties it).
  void Drain(rpc::ReportTaskEventsRequest* req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  const bool enabled_;
  absl::Mutex mu_;
  absl::flat_hash_map<Key, Pending> buffered_ ABSL_GUARDED_BY(mu_);
  // Function names seen (few: one per function), and this batch's errors.
  std::vector<std::string> names_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint32_t> name_index_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<int, std::string>> errors_ ABSL_GUARDED_BY(mu_);
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  bool armed_ ABSL_GUARDED_BY(mu_) = false;  // a Send is scheduled
  bool sending_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  CallsInFlight calls_;
};

// Records on `events` unless it is null (components made without events).
inline void RecordEvent(TaskEvents* events, const rpc::TaskSpec& spec,
                        TaskEvents::Kind kind,
                        const rpc::ErrorInfo* error = nullptr,
                        bool retried = false) {
  if (events != nullptr) events->Record(spec, kind, error, retried);
}

}  // namespace loom

#endif  // LOOM_RUNTIME_TASK_EVENTS_H_
