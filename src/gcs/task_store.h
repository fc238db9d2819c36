// src/gcs/task_store.h
//
// TaskStore: the head's record of tasks, built from the task events core
// workers report in batches (docs/observability.md). One record per task,
// its latest attempt, merged from what the owner and the executor saw; at
// most max_tasks_per_job per job: past that the record that finished or
// failed first goes (then the oldest of any state), and the store counts
// what it evicted. Per function it keeps exact counts by state and
// histograms of run and queueing time, which evictions do not touch.
//
//   TaskStore tasks({.max_tasks_per_job = 100000});
//   tasks.Report(request);                        // ReportTaskEvents
//   rpc::ListTasksReply reply;
//   absl::Status s = tasks.List(list, &reply);    // InvalidArgument: filters
#ifndef LOOM_GCS_TASK_STORE_H_
#define LOOM_GCS_TASK_STORE_H_

#include <array>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "proto/gcs.pb.h"
#include "src/common/ids.h"
#include "src/common/metrics.h"

namespace loom::gcs {

// Counts of durations in buckets 10% apart from 1 us to ~3 h, so that a
// percentile read from it is within 5% of the exact one; and, for
// Prometheus, exact counts in the coarser buckets of ExportBounds.
class DurationHistogram {
 public:
  void Add(int64_t micros);
  void Merge(const DurationHistogram& other);
  // The q-quantile (0 < q <= 1) in milliseconds; 0 with no samples.
  double QuantileMs(double q) const;
  double MeanMs() const;
  int64_t count() const { return count_; }
  double sum_seconds() const { return sum_us_ / 1e6; }

  // Upper bounds in seconds, 100 us to 1 h; counts in them (the last is
  // above them all) as HistogramSample takes them.
  static const std::vector<double>& ExportBounds();
  std::vector<uint64_t> ExportCounts() const;

 private:
  static constexpr int kBuckets = 240;
  static constexpr int kExportBuckets = 20;  // ExportBounds().size() + 1
  std::array<int64_t, kBuckets> buckets_{};
  std::array<int64_t, kExportBuckets> exported_{};
  int64_t count_ = 0;
  double sum_us_ = 0;
};

// Thread-safe.
class TaskStore {
 public:
  struct Options {
    int64_t max_tasks_per_job = 100000;
  };
  explicit TaskStore(Options options);
  ~TaskStore();

  // Merges a batch; events with a malformed id are dropped (and counted).
  void Report(const rpc::ReportTaskEventsRequest& req);
  // The actor's class ("pkg.Model"): its tasks are named Model.__init__ and
  // Model.method, as Ray names them.
  void NameActor(const std::string& actor_id, const std::string& class_name);
  // InvalidArgument for an unknown filter key, op, or state.
  absl::Status List(const rpc::ListTasksRequest& req,
                    rpc::ListTasksReply* reply) const;
  void Summarize(const rpc::SummarizeTasksRequest& req,
                 rpc::SummarizeTasksReply* reply) const;
  int64_t size() const;
  // For /metrics, over every job: loom_tasks{state,name} (tasks by state,
  // as Ray's ray_tasks) and per function the histograms
  // loom_task_run_seconds and loom_task_queued_seconds.
  MetricFamilies Collect() const;
  // The columns tasks are listed with and filtered on.
  static const std::vector<std::string>& Columns();

  enum Time {
    kSubmitted,
    kArgsReady,
    kPushed,
    kExecStart,
    kRunStart,
    kRunEnd,
    kExecEnd,
    kFinished,
    kFailed,
    kNumTimes
  };
  enum State : uint8_t {
    kPendingArgs,
    kPendingNode,
    kSubmittedToWorker,
    kRunning,
    kFinishedState,
    kFailedState,
    kNumStates
  };
  static const char* StateName(int state);

 private:
  struct Record {
    uint64_t seq = 0;  // when inserted: tells stale queue entries apart
    int32_t attempt = 0;
    uint32_t fn = 0;      // functions_
    uint32_t actor = 0;   // actors_ (0: none)
    uint32_t worker = 0;  // workers_ (0: none)
    uint8_t state = kPendingArgs;
    uint8_t error_kind = 0;
    bool retried = false;
    bool run_sampled = false;
    bool queued_sampled = false;
    int64_t times[kNumTimes] = {};
    std::unique_ptr<std::string> error;
  };
  using Entry = std::pair<TaskId, uint64_t>;
  struct Job {
    absl::flat_hash_map<TaskId, Record> records;
    std::deque<Entry> order;  // by insertion; some entries stale
    std::deque<Entry> done;   // by the time they ended; some stale
  };
  struct Function {
    JobId job;
    std::string name;
    uint8_t type = 0;
    std::array<int64_t, kNumStates> states{};
    DurationHistogram run, queued;
  };
  struct Executor {
    std::string worker_id, node_id;
    int64_t pid = 0;
  };
  struct Filter;

  void Merge(const rpc::TaskEvent& e, const TaskId& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Evict(Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Remove(Job& job, const Entry& entry, bool only_ended)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint32_t FunctionFor(const JobId& job, const std::string& name, uint8_t type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint32_t ActorFor(const std::string& actor_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NameOf(const rpc::TaskEvent& e) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  uint32_t ExecutorFor(const rpc::TaskEvent& e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Fill(const TaskId& id, const Record& r, rpc::TaskEvent* out) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  bool Matches(const std::vector<Filter>& filters, const TaskId& id,
               const Record& r) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  std::map<uint32_t, Job> jobs_ ABSL_GUARDED_BY(mu_);
  std::vector<Function> functions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint32_t> function_index_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::string> actors_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint32_t> actor_index_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> actor_classes_
      ABSL_GUARDED_BY(mu_);
  std::vector<Executor> executors_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint32_t> executor_index_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t size_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t evicted_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t dropped_events_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_TASK_STORE_H_
