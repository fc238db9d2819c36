#include "runtime/metric_recorder.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "src/common/metrics.h"

namespace loom {

MetricRecorder& MetricRecorder::Global() {
  static auto* recorder = new MetricRecorder();
  return *recorder;
}

absl::StatusOr<int> MetricRecorder::Define(const Definition& def) {
  return DefineChecked(def, /*own=*/false);
}

absl::StatusOr<int> MetricRecorder::DefineOwn(const Definition& def) {
  return DefineChecked(def, /*own=*/true);
}

absl::StatusOr<int> MetricRecorder::DefineChecked(const Definition& def,
                                                  bool own) {
  if (auto s =
          CheckMetricDefinition(def.name, def.label_names, def.boundaries, own);
      !s.ok()) {
    return s;
  }
  bool histogram = def.kind == rpc::MetricPoint::HISTOGRAM;
  if (histogram && def.boundaries.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("histogram ", def.name, " needs boundaries"));
  }
  if (!histogram && !def.boundaries.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric ", def.name, ": only histograms have boundaries"));
  }
  absl::MutexLock lock(&mu_);
  if (auto it = by_name_.find(def.name); it != by_name_.end()) {
    const Definition& old = metrics_[it->second].def;
    if (old.kind != def.kind || old.boundaries != def.boundaries ||
        old.label_names != def.label_names) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metric ", def.name,
          " is already defined with another kind, boundaries or labels"));
    }
    return it->second;
  }
  metrics_.push_back(Metric{def, {}});
  by_name_[def.name] = static_cast<int>(metrics_.size() - 1);
  return static_cast<int>(metrics_.size() - 1);
}

MetricRecorder::Series* MetricRecorder::SeriesFor(Metric& m, LabelSet labels) {
  auto it = m.series.find(labels);
  if (it != m.series.end()) return &it->second;
  if (series_ >= kMaxSeries) return nullptr;
  ++series_;
  Series s;
  if (m.def.kind == rpc::MetricPoint::HISTOGRAM) {
    s.counts.resize(m.def.boundaries.size() + 1);
  }
  return &m.series.emplace(std::move(labels), std::move(s)).first->second;
}

absl::Status MetricRecorder::Record(
    int metric, const std::map<std::string, std::string>& labels,
    double value) {
  if (!std::isfinite(value)) {
    return absl::InvalidArgumentError("a metric's value must be finite");
  }
  absl::MutexLock lock(&mu_);
  if (metric < 0 || metric >= static_cast<int>(metrics_.size())) {
    return absl::InvalidArgumentError("no such metric");
  }
  Metric& m = metrics_[metric];
  for (const auto& [k, v] : labels) {
    const auto& names = m.def.label_names;
    if (std::find(names.begin(), names.end(), k) == names.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metric ", m.def.name, " has no label '", k, "' (defined: ",
          names.empty() ? "none" : absl::StrJoin(names, ", "), ")"));
    }
  }
  if (m.def.kind == rpc::MetricPoint::COUNTER && value < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "counter ", m.def.name, " only goes up (got ", value, ")"));
  }
  Series* s = SeriesFor(m, LabelSet(labels.begin(), labels.end()));
  if (s == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("more than ", kMaxSeries,
                     " metric series (label combinations) in this process"));
  }
  switch (m.def.kind) {
    case rpc::MetricPoint::COUNTER:
      s->value += value;
      break;
    case rpc::MetricPoint::GAUGE:
      s->value = value;
      break;
    default: {
      const auto& b = m.def.boundaries;
      s->counts[std::lower_bound(b.begin(), b.end(), value) - b.begin()]++;
      s->sum += value;
    }
  }
  if (!s->changed && changed_++ == 0 && on_change_) on_change_();
  s->changed = true;
  return absl::OkStatus();
}

void MetricRecorder::set_on_change(const void* owner,
                                   std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  if (fn == nullptr && on_change_owner_ != owner) return;
  on_change_owner_ = fn ? owner : nullptr;
  on_change_ = std::move(fn);
}

void MetricRecorder::Drain(
    google::protobuf::RepeatedPtrField<rpc::MetricPoint>* out) {
  absl::MutexLock lock(&mu_);
  if (changed_ == 0) return;
  for (Metric& m : metrics_) {
    for (auto& [labels, s] : m.series) {
      if (!s.changed) continue;
      rpc::MetricPoint* p = out->Add();
      p->set_name(m.def.name);
      p->set_help(m.def.help);
      p->set_kind(m.def.kind);
      for (const auto& [k, v] : labels) (*p->mutable_labels())[k] = v;
      p->set_value(s.value);
      if (m.def.kind == rpc::MetricPoint::HISTOGRAM) {
        for (double b : m.def.boundaries) p->add_boundaries(b);
        for (uint64_t& c : s.counts) {
          p->add_bucket_counts(c);
          c = 0;
        }
        p->set_sum(s.sum);
        s.sum = 0;
      }
      if (m.def.kind == rpc::MetricPoint::COUNTER) s.value = 0;
      s.changed = false;
    }
  }
  changed_ = 0;
}

void MetricRecorder::Restore(
    const google::protobuf::RepeatedPtrField<rpc::MetricPoint>& in) {
  absl::MutexLock lock(&mu_);
  for (const rpc::MetricPoint& p : in) {
    auto it = by_name_.find(p.name());
    if (it == by_name_.end()) continue;
    Metric& m = metrics_[it->second];
    auto series = m.series.find(LabelSet(p.labels().begin(), p.labels().end()));
    if (series == m.series.end()) continue;
    Series& s = series->second;
    if (m.def.kind == rpc::MetricPoint::GAUGE) {
      if (!s.changed) s.value = p.value();
    } else if (m.def.kind == rpc::MetricPoint::COUNTER) {
      s.value += p.value();
    } else {
      for (int i = 0;
           i < p.bucket_counts_size() && i < static_cast<int>(s.counts.size());
           ++i) {
        s.counts[i] += p.bucket_counts(i);
      }
      s.sum += p.sum();
    }
    if (!s.changed) ++changed_;
    s.changed = true;
  }
}

bool MetricRecorder::HasChanges() const {
  absl::MutexLock lock(&mu_);
  return changed_ > 0;
}

}  // namespace loom
