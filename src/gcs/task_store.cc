#include "src/gcs/task_store.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "src/common/state_filter.h"

namespace loom::gcs {
namespace {

constexpr double kBucketRatio = 1.1;

int BucketOf(int64_t micros) {
  if (micros < 1) return 0;
  int b = static_cast<int>(std::log(static_cast<double>(micros)) /
                           std::log(kBucketRatio)) +
          1;
  return std::min(b, 239);
}

// The geometric middle of bucket b (b >= 1 covers [r^(b-1), r^b) us).
double BucketMiddleUs(int b) {
  if (b == 0) return 0.5;
  return std::pow(kBucketRatio, b - 0.5);
}

bool Ended(uint8_t state) {
  return state == TaskStore::kFinishedState || state == TaskStore::kFailedState;
}

uint8_t StateOf(const int64_t* t, bool retried) {
  if (t[TaskStore::kFailed] && !retried) return TaskStore::kFailedState;
  if (t[TaskStore::kFinished]) return TaskStore::kFinishedState;
  if (retried) return TaskStore::kPendingNode;
  if (t[TaskStore::kExecStart] || t[TaskStore::kRunStart]) {
    return TaskStore::kRunning;
  }
  if (t[TaskStore::kPushed]) return TaskStore::kSubmittedToWorker;
  if (t[TaskStore::kArgsReady]) return TaskStore::kPendingNode;
  return TaskStore::kPendingArgs;
}

// An id column: the hex of the id's first bytes, enough to compare with
// the filter's value (a prefix matches).
std::string HexPrefix(std::string_view binary, size_t hex_chars) {
  return HexEncode(
      binary.substr(0, std::min(binary.size(), (hex_chars + 1) / 2)));
}

}  // namespace

const std::vector<double>& DurationHistogram::ExportBounds() {
  static constexpr double kBounds[] = {
      0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
      0.5,    1,      2.5,   5,      10,    30,   60,    300,  3600};
  static_assert(std::size(kBounds) + 1 == kExportBuckets);
  static const auto* bounds =
      new std::vector<double>(std::begin(kBounds), std::end(kBounds));
  return *bounds;
}

std::vector<uint64_t> DurationHistogram::ExportCounts() const {
  return std::vector<uint64_t>(exported_.begin(), exported_.end());
}

void DurationHistogram::Add(int64_t micros) {
  buckets_[BucketOf(micros)]++;
  const std::vector<double>& bounds = ExportBounds();
  double seconds = static_cast<double>(micros) / 1e6;
  exported_[std::lower_bound(bounds.begin(), bounds.end(), seconds) -
            bounds.begin()]++;
  count_++;
  sum_us_ += static_cast<double>(std::max<int64_t>(micros, 0));
}

void DurationHistogram::Merge(const DurationHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  for (int i = 0; i < kExportBuckets; ++i) exported_[i] += other.exported_[i];
  count_ += other.count_;
  sum_us_ += other.sum_us_;
}

double DurationHistogram::QuantileMs(double q) const {
  if (count_ == 0) return 0;
  int64_t rank = static_cast<int64_t>(std::ceil(q * count_));
  int64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return BucketMiddleUs(i) / 1000.0;
  }
  return BucketMiddleUs(kBuckets - 1) / 1000.0;
}

double DurationHistogram::MeanMs() const {
  return count_ == 0 ? 0 : sum_us_ / count_ / 1000.0;
}

enum Column {
  kTaskIdColumn,
  kAttemptColumn,
  kNameColumn,
  kStateColumn,
  kJobIdColumn,
  kActorIdColumn,
  kTypeColumn,
  kNodeIdColumn,
  kWorkerIdColumn,
  kPidColumn,
  kErrorTypeColumn
};

struct TaskStore::Filter {
  Column column;
  rpc::StateFilter filter;
};

const std::vector<std::string>& TaskStore::Columns() {
  static const auto* columns = new std::vector<std::string>{
      "task_id", "attempt", "name",      "state", "job_id",    "actor_id",
      "type",    "node_id", "worker_id", "pid",   "error_type"};
  return *columns;
}

const char* TaskStore::StateName(int state) {
  static const char* kNames[] = {"PENDING_ARGS_AVAIL",
                                 "PENDING_NODE_ASSIGNMENT",
                                 "SUBMITTED_TO_WORKER",
                                 "RUNNING",
                                 "FINISHED",
                                 "FAILED"};
  return state >= 0 && state < kNumStates ? kNames[state] : "?";
}

TaskStore::TaskStore(Options options) : options_(options) {
  actors_.emplace_back();
  executors_.emplace_back();
}
TaskStore::~TaskStore() = default;

int64_t TaskStore::size() const {
  absl::MutexLock lock(&mu_);
  return size_;
}

void TaskStore::Report(const rpc::ReportTaskEventsRequest& req) {
  absl::MutexLock lock(&mu_);
  dropped_events_ += std::max<int64_t>(req.dropped(), 0);
  for (const auto& e : req.events()) {
    auto id = TaskId::FromBinary(e.task_id());
    if (!id.ok()) {
      dropped_events_++;
      continue;
    }
    Merge(e, *id);
  }
}

void TaskStore::NameActor(const std::string& actor_id,
                          const std::string& class_name) {
  size_t dot = class_name.rfind('.');
  absl::MutexLock lock(&mu_);
  actor_classes_[actor_id] =
      dot == std::string::npos ? class_name : class_name.substr(dot + 1);
}

std::string TaskStore::NameOf(const rpc::TaskEvent& e) const {
  // Python names its functions module.qualname: shown as Ray shows them,
  // without the module.
  if (e.actor_id().empty()) return e.name().substr(e.name().rfind('.') + 1);
  auto it = actor_classes_.find(e.actor_id());
  if (it == actor_classes_.end()) return e.name();
  if (e.type() == rpc::TaskEvent::ACTOR_CREATION_TASK) {
    return it->second + ".__init__";
  }
  if (e.name().find("::") != std::string::npos) return e.name();  // C++
  return absl::StrCat(it->second, ".", e.name().substr(0, e.name().find(':')));
}

uint32_t TaskStore::FunctionFor(const JobId& job, const std::string& name,
                                uint8_t type) {
  std::string key = absl::StrCat(job.Binary(), std::string(1, type), name);
  auto [it, added] = function_index_.try_emplace(key, functions_.size());
  if (added) {
    Function f;
    f.job = job;
    f.name = name;
    f.type = type;
    functions_.push_back(std::move(f));
  }
  return it->second;
}

uint32_t TaskStore::ActorFor(const std::string& actor_id) {
  if (actor_id.empty()) return 0;
  auto [it, added] = actor_index_.try_emplace(actor_id, actors_.size());
  if (added) actors_.push_back(actor_id);
  return it->second;
}

uint32_t TaskStore::ExecutorFor(const rpc::TaskEvent& e) {
  std::string key = absl::StrCat(e.worker_id(), e.node_id(), "/", e.pid());
  auto [it, added] = executor_index_.try_emplace(key, executors_.size());
  if (added) executors_.push_back({e.worker_id(), e.node_id(), e.pid()});
  return it->second;
}

void TaskStore::Merge(const rpc::TaskEvent& e, const TaskId& id) {
  JobId job_id = id.Job();
  Job& job = jobs_[job_id.ToInt()];
  auto type = static_cast<uint8_t>(e.type());
  auto [it, added] = job.records.try_emplace(id);
  Record& r = it->second;
  if (added) {
    r.seq = next_seq_++;
    r.attempt = e.attempt();
    r.fn = FunctionFor(job_id, NameOf(e), type);
    r.actor = ActorFor(e.actor_id());
    functions_[r.fn].states[r.state]++;
    job.order.emplace_back(id, r.seq);
    size_++;
  } else if (e.attempt() < r.attempt) {
    // An attempt retried since (its report may come after the next one's):
    // only when the task was submitted counts.
    int64_t& submitted = r.times[kSubmitted];
    if (e.submitted_us() > 0 &&
        (submitted == 0 || e.submitted_us() < submitted)) {
      submitted = e.submitted_us();
    }
    return;
  } else if (e.attempt() > r.attempt) {
    int64_t submitted = r.times[kSubmitted];
    std::fill(std::begin(r.times), std::end(r.times), 0);
    r.times[kSubmitted] = submitted;
    r.attempt = e.attempt();
    r.retried = false;
    r.error.reset();
    r.error_kind = 0;
    r.run_sampled = r.queued_sampled = false;
  }
  if (functions_[r.fn].name.empty() && !e.name().empty()) {
    functions_[r.fn].states[r.state]--;
    r.fn = FunctionFor(job_id, NameOf(e), type);
    functions_[r.fn].states[r.state]++;
  }
  if (r.actor == 0) r.actor = ActorFor(e.actor_id());
  const int64_t times[kNumTimes] = {
      e.submitted_us(),  e.args_ready_us(), e.pushed_us(),
      e.exec_start_us(), e.run_start_us(),  e.run_end_us(),
      e.exec_end_us(),   e.finished_us(),   e.failed_us()};
  for (int k = 0; k < kNumTimes; ++k) {
    if (times[k] > 0 && (r.times[k] == 0 || times[k] < r.times[k])) {
      r.times[k] = times[k];
    }
  }
  if (!e.worker_id().empty()) r.worker = ExecutorFor(e);
  if (e.retried()) r.retried = true;
  if (e.failed_us() > 0 || e.retried()) {
    r.error_kind = static_cast<uint8_t>(e.error_kind());
    if (!e.error_message().empty()) {
      r.error = std::make_unique<std::string>(e.error_message());
    }
  }
  Function& fn = functions_[r.fn];
  if (!r.run_sampled && r.times[kRunStart] && r.times[kRunEnd]) {
    fn.run.Add(r.times[kRunEnd] - r.times[kRunStart]);
    r.run_sampled = true;
  }
  if (!r.queued_sampled && r.times[kSubmitted] && r.times[kRunStart]) {
    fn.queued.Add(r.times[kRunStart] - r.times[kSubmitted]);
    r.queued_sampled = true;
  }
  uint8_t state = StateOf(r.times, r.retried);
  if (state != r.state) {
    fn.states[r.state]--;
    fn.states[state]++;
    r.state = state;
    if (Ended(state)) job.done.emplace_back(id, r.seq);
  }
  if (static_cast<int64_t>(job.records.size()) > options_.max_tasks_per_job) {
    Evict(job);
  }
}

bool TaskStore::Remove(Job& job, const Entry& entry, bool only_ended) {
  auto it = job.records.find(entry.first);
  if (it == job.records.end() || it->second.seq != entry.second) return false;
  if (only_ended && !Ended(it->second.state)) return false;
  job.records.erase(it);
  size_--;
  evicted_++;
  return true;
}

void TaskStore::Evict(Job& job) {
  bool removed = false;
  while (!removed && !job.done.empty()) {
    removed = Remove(job, job.done.front(), /*only_ended=*/true);
    job.done.pop_front();
  }
  while (!removed && !job.order.empty()) {
    removed = Remove(job, job.order.front(), /*only_ended=*/false);
    job.order.pop_front();
  }
  // Entries of records evicted through `done` stay in `order`: drop them
  // once they are as many as the records.
  if (job.order.size() > 2 * job.records.size() + 1024) {
    std::deque<Entry> live;
    for (const Entry& entry : job.order) {
      auto it = job.records.find(entry.first);
      if (it != job.records.end() && it->second.seq == entry.second) {
        live.push_back(entry);
      }
    }
    job.order.swap(live);
  }
}

bool TaskStore::Matches(const std::vector<Filter>& filters, const TaskId& id,
                        const Record& r) const {
  for (const Filter& f : filters) {
    const std::string& want = f.filter.value();
    const Executor& ex = executors_[r.worker];
    const Function& fn = functions_[r.fn];
    std::string value;
    switch (f.column) {
      case kTaskIdColumn:
        value = HexPrefix(id.Binary(), want.size());
        break;
      case kAttemptColumn:
        value = std::to_string(r.attempt);
        break;
      case kNameColumn:
        if (!FilterMatches(f.filter, fn.name)) return false;
        continue;
      case kStateColumn:
        if (!FilterMatches(f.filter, StateName(r.state))) return false;
        continue;
      case kJobIdColumn:
        value = HexPrefix(fn.job.Binary(), want.size());
        break;
      case kActorIdColumn:
        value = HexPrefix(actors_[r.actor], want.size());
        break;
      case kTypeColumn:
        value = rpc::TaskEvent::Type_Name(fn.type);
        break;
      case kNodeIdColumn:
        value = HexPrefix(ex.node_id, want.size());
        break;
      case kWorkerIdColumn:
        value = HexPrefix(ex.worker_id, want.size());
        break;
      case kPidColumn:
        value = ex.pid ? std::to_string(ex.pid) : "";
        break;
      case kErrorTypeColumn:
        value = r.state == kFailedState || r.retried
                    ? rpc::ErrorInfo::Kind_Name(r.error_kind)
                    : "";
        break;
    }
    if (!FilterMatches(f.filter, value)) return false;
  }
  return true;
}

void TaskStore::Fill(const TaskId& id, const Record& r,
                     rpc::TaskEvent* out) const {
  const Function& fn = functions_[r.fn];
  const Executor& ex = executors_[r.worker];
  out->set_task_id(id.Binary());
  out->set_attempt(r.attempt);
  out->set_name(fn.name);
  out->set_job_id(fn.job.Binary());
  out->set_actor_id(actors_[r.actor]);
  out->set_type(static_cast<rpc::TaskEvent::Type>(fn.type));
  out->set_submitted_us(r.times[kSubmitted]);
  out->set_args_ready_us(r.times[kArgsReady]);
  out->set_pushed_us(r.times[kPushed]);
  out->set_exec_start_us(r.times[kExecStart]);
  out->set_run_start_us(r.times[kRunStart]);
  out->set_run_end_us(r.times[kRunEnd]);
  out->set_exec_end_us(r.times[kExecEnd]);
  out->set_finished_us(r.times[kFinished]);
  out->set_failed_us(r.times[kFailed]);
  out->set_node_id(ex.node_id);
  out->set_worker_id(ex.worker_id);
  out->set_pid(ex.pid);
  if (r.state == kFailedState || r.retried) {
    out->set_error_kind(static_cast<rpc::ErrorInfo::Kind>(r.error_kind));
    if (r.error) out->set_error_message(*r.error);
  }
  out->set_retried(r.retried);
  out->set_state(StateName(r.state));
}

absl::Status TaskStore::List(const rpc::ListTasksRequest& req,
                             rpc::ListTasksReply* reply) const {
  std::vector<rpc::StateFilter> given(req.filters().begin(),
                                      req.filters().end());
  if (absl::Status s = CheckFilters(given, Columns(), "tasks"); !s.ok()) {
    return s;
  }
  std::vector<Filter> filters;
  for (const auto& f : given) {
    const auto& columns = Columns();
    int column =
        std::find(columns.begin(), columns.end(), f.key()) - columns.begin();
    if (column == kStateColumn) {
      bool known = false;
      for (int s = 0; s < kNumStates; ++s) {
        known = known || absl::EqualsIgnoreCase(f.value(), StateName(s));
      }
      if (!known) {
        return absl::InvalidArgumentError(absl::StrCat(
            "unknown task state '", f.value(),
            "'; one of: PENDING_ARGS_AVAIL, PENDING_NODE_ASSIGNMENT, "
            "SUBMITTED_TO_WORKER, RUNNING, FINISHED, FAILED"));
      }
    }
    filters.push_back({static_cast<Column>(column), f});
  }
  int64_t limit = req.limit() > 0 ? req.limit() : 100;
  absl::MutexLock lock(&mu_);
  // Without filters the count is known: stop at the limit.
  int64_t total = 0;
  for (auto job = jobs_.rbegin(); job != jobs_.rend(); ++job) {
    const Job& j = job->second;
    for (auto e = j.order.rbegin(); e != j.order.rend(); ++e) {
      if (filters.empty() && total >= limit) break;
      auto it = j.records.find(e->first);
      if (it == j.records.end() || it->second.seq != e->second) continue;
      if (!Matches(filters, it->first, it->second)) continue;
      if (total++ < limit) Fill(it->first, it->second, reply->add_tasks());
    }
  }
  if (filters.empty()) total = size_;
  reply->set_total(total);
  reply->set_evicted(evicted_);
  reply->set_dropped_events(dropped_events_);
  return absl::OkStatus();
}

void TaskStore::Summarize(const rpc::SummarizeTasksRequest& req,
                          rpc::SummarizeTasksReply* reply) const {
  absl::MutexLock lock(&mu_);
  std::map<std::pair<std::string, uint8_t>, Function> merged;
  for (const Function& f : functions_) {
    if (!req.job_id().empty() && f.job.Binary() != req.job_id()) continue;
    Function& m = merged[{f.name, f.type}];
    for (int s = 0; s < kNumStates; ++s) m.states[s] += f.states[s];
    m.run.Merge(f.run);
    m.queued.Merge(f.queued);
  }
  for (const auto& [key, f] : merged) {
    rpc::TaskSummary* out = reply->add_functions();
    out->set_name(key.first);
    out->set_type(static_cast<rpc::TaskEvent::Type>(key.second));
    for (int s = 0; s < kNumStates; ++s) {
      if (f.states[s] > 0) (*out->mutable_states())[StateName(s)] = f.states[s];
    }
    out->set_run_samples(f.run.count());
    out->set_run_p50_ms(f.run.QuantileMs(0.50));
    out->set_run_p95_ms(f.run.QuantileMs(0.95));
    out->set_run_p99_ms(f.run.QuantileMs(0.99));
    out->set_run_mean_ms(f.run.MeanMs());
    out->set_queued_samples(f.queued.count());
    out->set_queued_p50_ms(f.queued.QuantileMs(0.50));
    out->set_queued_p95_ms(f.queued.QuantileMs(0.95));
    out->set_queued_p99_ms(f.queued.QuantileMs(0.99));
  }
  reply->set_evicted(evicted_);
  reply->set_dropped_events(dropped_events_);
}

MetricFamilies TaskStore::Collect() const {
  std::map<std::string, Function> by_name;
  {
    absl::MutexLock lock(&mu_);
    for (const Function& f : functions_) {
      Function& m = by_name[f.name];
      for (int s = 0; s < kNumStates; ++s) m.states[s] += f.states[s];
      m.run.Merge(f.run);
      m.queued.Merge(f.queued);
    }
  }
  prometheus::MetricFamily tasks{
      "loom_tasks",
      "Tasks by state and function (as Ray's ray_tasks)",
      prometheus::MetricType::Gauge,
      {}};
  prometheus::MetricFamily run{"loom_task_run_seconds",
                               "Time tasks ran, per function",
                               prometheus::MetricType::Histogram,
                               {}};
  prometheus::MetricFamily queued{
      "loom_task_queued_seconds",
      "Time from submission until a worker started the task, per function",
      prometheus::MetricType::Histogram,
      {}};
  const std::vector<double>& bounds = DurationHistogram::ExportBounds();
  for (const auto& [name, f] : by_name) {
    for (int s = 0; s < kNumStates; ++s) {
      if (f.states[s] == 0) continue;
      prometheus::ClientMetric m;
      m.label = {MetricLabel("name", name), MetricLabel("state", StateName(s))};
      m.gauge.value = static_cast<double>(f.states[s]);
      tasks.metric.push_back(std::move(m));
    }
    run.metric.push_back(HistogramSample({MetricLabel("name", name)}, bounds,
                                         f.run.ExportCounts(),
                                         f.run.sum_seconds()));
    queued.metric.push_back(HistogramSample({MetricLabel("name", name)}, bounds,
                                            f.queued.ExportCounts(),
                                            f.queued.sum_seconds()));
  }
  return {std::move(tasks), std::move(run), std::move(queued)};
}

}  // namespace loom::gcs
