// User metrics (runtime/metric_recorder.h), for loom.util.metrics.
#include "bindings.h"
#include "runtime/metric_recorder.h"

namespace loom::py {
namespace {

// Raises ValueError for a bad definition or value, RuntimeError past the
// series limit.
void Raise(const absl::Status& s) {
  if (s.code() == absl::StatusCode::kInvalidArgument) {
    throw pyb::value_error(std::string(s.message()));
  }
  throw std::runtime_error(std::string(s.message()));
}

}  // namespace

void BindMetrics(pyb::module_& m) {
  m.def(
      "metric_define",
      [](const std::string& name, const std::string& help,
         const std::string& kind, const std::vector<double>& boundaries,
         const std::vector<std::string>& label_names, bool own) {
        MetricRecorder::Definition def{name, help, rpc::MetricPoint::COUNTER,
                                       boundaries, label_names};
        if (kind == "gauge") def.kind = rpc::MetricPoint::GAUGE;
        if (kind == "histogram") def.kind = rpc::MetricPoint::HISTOGRAM;
        auto id = own ? MetricRecorder::Global().DefineOwn(def)
                      : MetricRecorder::Global().Define(def);
        if (!id.ok()) Raise(id.status());
        return *id;
      },
      pyb::arg("name"), pyb::arg("help"), pyb::arg("kind"),
      pyb::arg("boundaries"), pyb::arg("label_names"), pyb::arg("own") = false);
  m.def(
      "metric_record",
      [](int metric, const std::map<std::string, std::string>& labels,
         double value) {
        auto s = MetricRecorder::Global().Record(metric, labels, value);
        if (!s.ok()) Raise(s);
      },
      pyb::arg("metric"), pyb::arg("labels"), pyb::arg("value"));
}

}  // namespace loom::py
