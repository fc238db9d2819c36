// loom::state (include/loom/state.h) over runtime/state_api.h.
#include <fstream>

#include "loom/errors.h"
#include "loom/state.h"
#include "runtime/core_worker.h"
#include "runtime/state_api.h"
#include "runtime/timeline.h"

namespace loom::state {
namespace {

std::string Head() {
  CoreWorker* cw = GlobalCoreWorker();
  if (cw == nullptr) throw Error("loom::Init has not been called");
  return cw->gcs_address();
}

template <typename T>
T Check(absl::StatusOr<T> value) {
  if (!value.ok()) throw Error(std::string(value.status().message()));
  return *std::move(value);
}

Listing Convert(const StateListing& in) {
  Listing out{in.columns, {}, in.total, in.warnings};
  for (const auto& row : in.rows) out.rows.emplace_back(row.begin(), row.end());
  return out;
}

}  // namespace

Listing List(const std::string& kind, const std::vector<std::string>& filters,
             int64_t limit, bool detail) {
  StateQuery q{kind, {}, limit, detail};
  for (const auto& f : filters) q.filters.push_back(Check(ParseFilter(f)));
  return Convert(Check(ListState(Head(), q)));
}

std::optional<Row> Get(const std::string& kind, const std::string& id) {
  auto row = GetState(Head(), kind, id);
  if (row.status().code() == absl::StatusCode::kNotFound) return std::nullopt;
  StateRow found = Check(std::move(row));
  return Row(found.begin(), found.end());
}

Listing Summarize(const std::string& kind, const std::string& job_hex) {
  return Convert(Check(SummarizeState(Head(), kind, job_hex)));
}

void Timeline(const std::string& path, const std::string& job_hex) {
  std::string trace = Check(TimelineJson(Head(), job_hex));
  std::ofstream out(path, std::ios::binary);
  out << trace;
  if (!out.flush()) throw Error("cannot write " + path);
}

}  // namespace loom::state
