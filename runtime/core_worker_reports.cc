// CoreWorker's reports: task counts, the objects it holds and its user
// metrics to its raylet each second (ReportTaskStats), and task events to the
// head (TaskEvents); and the head's events it follows (HeadEvents).
#include <unistd.h>

#include "absl/strings/match.h"
#include "runtime/actor_submitter.h"
#include "runtime/core_worker.h"
#include "runtime/metric_recorder.h"
#include "runtime/raylet_client.h"
#include "runtime/task_events.h"
#include "runtime/task_submitter.h"  // TaskCounters
#include "src/common/head_events.h"

namespace loom {

void CoreWorker::ReportStatsPeriodically() {
  if (shut_down_) return;
  bool sent = ReportStats();
  clients_.DropIdle();
  if (!sent) {
    // A second with nothing to say: sleep until a count, a metric or a
    // free wakes the reports (WakeReports), so an idle worker stays idle.
    reports_asleep_ = true;
    if (!ReportsPending() || !reports_asleep_.exchange(false)) return;
  }
  loop_.PostAfter(absl::Seconds(1), [this] { ReportStatsPeriodically(); });
}

void CoreWorker::WakeReports() {
  if (reports_asleep_.load(std::memory_order_relaxed) &&
      reports_asleep_.exchange(false)) {
    loop_.PostAfter(absl::Seconds(1), [this] { ReportStatsPeriodically(); });
  }
}

std::array<int64_t, 5> CoreWorker::StatsNow() const {
  return {counters_->submitted, counters_->finished, counters_->failed,
          counters_->retried, static_cast<int64_t>(objects_.size())};
}

bool CoreWorker::HoldsChanged(const std::array<int64_t, 5>& now) const {
  // A worker says when it starts or stops owning objects (drivers do not).
  return !options_.is_driver && (now[4] > 0) != (reported_[4] > 0);
}

bool CoreWorker::ReportsPending() const {
  std::array<int64_t, 5> now = StatsNow();
  for (int i = 0; i < 4; ++i) {
    if (now[i] != reported_[i]) return true;
  }
  return HoldsChanged(now) || MetricRecorder::Global().HasChanges();
}

bool CoreWorker::ReportStats() {
  // Submitters report submitted/retried; executors report finished/failed.
  const int64_t* last = reported_;
  std::array<int64_t, 5> now = StatsNow();
  rpc::ReportTaskStatsRequest req;
  req.set_submitted(now[0] - last[0]);
  req.set_finished(now[1] - last[1]);
  req.set_failed(now[2] - last[2]);
  req.set_retried(now[3] - last[3]);
  bool holds_changed = HoldsChanged(now);
  if (holds_changed) {
    req.set_worker_id(options_.worker_id.Binary());
    req.set_live_objects(now[4]);
  }
  MetricRecorder& user_metrics = MetricRecorder::Global();
  user_metrics.Drain(req.mutable_metrics());
  if (req.submitted() == 0 && req.finished() == 0 && req.failed() == 0 &&
      req.retried() == 0 && !holds_changed && req.metrics_size() == 0) {
    return false;
  }
  if (raylet_->ReportTaskStats(req).ok()) {
    for (int i = 0; i < 5; ++i) reported_[i] = now[i];
  } else {
    user_metrics.Restore(req.metrics());
  }
  return true;
}

void CoreWorker::StartTaskEvents() {
  events_ = std::make_unique<TaskEvents>(TaskEvents::Options{
      .loop = &loop_,
      .clients = &clients_,
      .head = options_.gcs_address,
      .node = node_id_,
      .worker = options_.worker_id,
      .pid = getpid(),
      .relay = options_.is_driver ? std::string() : options_.raylet_address});
}

void CoreWorker::FollowHeadEvents() {
  if (options_.gcs_address.empty()) return;
  // Once, when this process first sends work out (idle workers hold no
  // subscription): what it has in flight on a node the head declares dead
  // fails over at once.
  std::call_once(head_events_once_, [this] {
    HeadEvents::Options events{&loop_, &clients_, options_.gcs_address};
    events.on_event = [this](const rpc::Event& e) {
      if (shut_down_) return;
      if (e.kind() == rpc::Event::NODE_DEAD) {
        if (submitter_) submitter_->OnNodeDead(e.id());
        if (actor_submitter_) actor_submitter_->OnNodeDead(e.id());
      } else if (e.kind() == rpc::Event::ACTOR_STATE &&
                 absl::StartsWith(e.detail(), "DEAD")) {
        if (auto actor = ActorId::FromBinary(e.id()); actor.ok()) {
          ReleaseCreationRefs(*actor);
        }
      }
    };
    events.kinds = {rpc::Event::NODE_DEAD, rpc::Event::ACTOR_STATE};
    head_events_ = std::make_unique<HeadEvents>(std::move(events));
    head_events_->Start();
  });
}

}  // namespace loom
