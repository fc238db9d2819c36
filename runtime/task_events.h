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

#include <string>
#include <utility>

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
  // `error`: with kFailed, why; `retried`: the attempt failed and the task
  // runs again.
  void Record(const rpc::TaskSpec& spec, Kind kind,
              const rpc::ErrorInfo* error = nullptr, bool retried = false);
  // Sends what is buffered (waiting up to `timeout` for the head), then
  // records nothing more.
  void Shutdown(absl::Duration timeout);

 private:
  void Send();

  const Options options_;
  const bool enabled_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::pair<TaskId, int32_t>, rpc::TaskEvent> buffered_
      ABSL_GUARDED_BY(mu_);
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
