// runtime/metric_recorder.h
//
// MetricRecorder: this process's user metrics (loom.util.metrics,
// include/loom/metrics.h), kept as changes since the last report. The core
// worker drains them into its periodic report to the raylet
// (ReportTaskStatsRequest.metrics), which exports them on its /metrics.
// Metrics can be defined and recorded before loom::Init: what they record
// goes with the first report.
//
//   auto& r = MetricRecorder::Global();
//   int requests = *r.Define({"requests", "Requests served", kCounter, {},
//   {"route"}}); r.Record(requests, {{"route", "/predict"}}, 1);
//   r.Drain(report.mutable_metrics());
#ifndef LOOM_RUNTIME_METRIC_RECORDER_H_
#define LOOM_RUNTIME_METRIC_RECORDER_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "proto/raylet.pb.h"
#include "src/common/metrics.h"

namespace loom {

// Thread-safe.
class MetricRecorder {
 public:
  using Kind = rpc::MetricPoint::Kind;
  struct Definition {
    std::string name;
    std::string help;
    Kind kind = rpc::MetricPoint::COUNTER;
    std::vector<double> boundaries;  // histograms: upper bounds, increasing
    std::vector<std::string> label_names;
  };
  static constexpr size_t kMaxSeries = 10000;

  static MetricRecorder& Global();

  // The metric's handle. Defining a name again with the same kind,
  // boundaries and labels returns the same handle; InvalidArgument for a
  // malformed definition (see CheckMetricDefinition) or a different one.
  absl::StatusOr<int> Define(const Definition& def);
  // Loom's own metrics that worker processes report (loom.serve's, named
  // loom_serve_*; see kWorkerOwnPrefix).
  absl::StatusOr<int> DefineOwn(const Definition& def);
  // Adds to a counter (value >= 0), sets a gauge, observes into a
  // histogram. InvalidArgument for an unknown handle, a label not defined,
  // a negative counter increment or a value that is not finite;
  // ResourceExhausted past kMaxSeries series in this process.
  absl::Status Record(int metric,
                      const std::map<std::string, std::string>& labels,
                      double value);
  // Moves what changed since the last drain into `out`.
  void Drain(google::protobuf::RepeatedPtrField<rpc::MetricPoint>* out);
  // Puts back what a failed report carried (counters and histograms add
  // up again; a gauge keeps a value set since).
  void Restore(const google::protobuf::RepeatedPtrField<rpc::MetricPoint>& in);
  bool HasChanges() const;
  // fn runs (under the recorder's lock: it must not call back) when a
  // drained recorder records again; one owner at a time, nullptr clears it
  // if `owner` set it.
  void set_on_change(const void* owner, std::function<void()> fn);

 private:
  using LabelSet = MetricLabelSet;
  struct Series : MetricSeries {
    bool changed = false;  // since the last drain
  };
  struct Metric {
    Definition def;
    std::map<LabelSet, Series> series;
  };
  absl::StatusOr<int> DefineChecked(const Definition& def, bool own);
  Series* SeriesFor(Metric& m, LabelSet labels)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::vector<Metric> metrics_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> by_name_ ABSL_GUARDED_BY(mu_);
  size_t series_ ABSL_GUARDED_BY(mu_) = 0;
  const void* on_change_owner_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::function<void()> on_change_ ABSL_GUARDED_BY(mu_);
  size_t changed_ ABSL_GUARDED_BY(mu_) = 0;  // series with changes
};

}  // namespace loom

#endif  // LOOM_RUNTIME_METRIC_RECORDER_H_
