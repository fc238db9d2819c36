// The cluster's state as rows, through the head (runtime/state_api.h), for
// loom.util.state.list_* / get_* / summarize_*.
#include "bindings.h"
#include "runtime/state_api.h"
#include "runtime/timeline.h"

namespace loom::py {
namespace {

// The head at `address`, else the one this process is connected to.
std::string Head(const std::string& address) {
  return address.empty() ? Core().gcs_address() : address;
}

pyb::list Rows(const std::vector<StateRow>& rows) {
  pyb::list out;
  for (const auto& row : rows) {
    pyb::list pairs;
    for (const auto& [column, value] : row) {
      pairs.append(pyb::make_tuple(column, value));
    }
    out.append(pairs);
  }
  return out;
}

pyb::list Warnings(const StateListing& listing) {
  pyb::list out;
  for (const auto& w : listing.warnings) out.append(w);
  return out;
}

// (rows as [(column, value)], total, warnings).
pyb::tuple ListStateRows(
    const std::string& address, const std::string& kind,
    const std::vector<std::tuple<std::string, std::string, std::string>>&
        filters,
    int64_t limit, bool detail) {
  StateQuery q{kind, {}, limit, detail};
  for (const auto& [key, op, value] : filters) {
    rpc::StateFilter f;
    f.set_key(key);
    f.set_op(op);
    f.set_value(value);
    q.filters.push_back(std::move(f));
  }
  absl::StatusOr<StateListing> listing;
  {
    pyb::gil_scoped_release release;
    listing = ListState(Head(address), q);
  }
  if (!listing.ok()) ThrowStatus(listing.status());
  return pyb::make_tuple(Rows(listing->rows), listing->total,
                         Warnings(*listing));
}

pyb::list GetStateRow(const std::string& address, const std::string& kind,
                      const std::string& id) {
  absl::StatusOr<StateRow> row;
  {
    pyb::gil_scoped_release release;
    row = GetState(Head(address), kind, id);
  }
  if (row.status().code() == absl::StatusCode::kNotFound) return pyb::list();
  if (!row.ok()) ThrowStatus(row.status());
  return Rows({*row})[0];
}

pyb::tuple SummarizeStateRows(const std::string& address,
                              const std::string& kind, const std::string& job) {
  absl::StatusOr<StateListing> listing;
  {
    pyb::gil_scoped_release release;
    listing = SummarizeState(Head(address), kind, job);
  }
  if (!listing.ok()) ThrowStatus(listing.status());
  return pyb::make_tuple(Rows(listing->rows), Warnings(*listing));
}

std::string Timeline(const std::string& address, const std::string& job) {
  absl::StatusOr<std::string> trace;
  {
    pyb::gil_scoped_release release;
    trace = TimelineJson(Head(address), job);
  }
  if (!trace.ok()) ThrowStatus(trace.status());
  return *trace;
}

}  // namespace

void BindState(pyb::module_& m) {
  m.def("list_state", &ListStateRows, pyb::arg("address"), pyb::arg("kind"),
        pyb::arg("filters"), pyb::arg("limit"), pyb::arg("detail"));
  m.def("get_state", &GetStateRow, pyb::arg("address"), pyb::arg("kind"),
        pyb::arg("id"));
  m.def("summarize_state", &SummarizeStateRows, pyb::arg("address"),
        pyb::arg("kind"), pyb::arg("job") = "");
  m.def("timeline", &Timeline, pyb::arg("address"), pyb::arg("job") = "");
}

}  // namespace loom::py
