// include/loom/state.h
//
// The cluster's state from C++, as `loom list|get|summary|timeline` show it
// (docs/observability.md): tasks, actors, objects, nodes, jobs, workers and
// placement groups as rows of (column, value), with the same filters.
// Needs loom::Init first; throws loom::Error on a bad kind or filter, or
// when the head cannot be reached.
//
//   auto failed = loom::state::List("tasks", {"state=FAILED"}, 100, true);
//   for (const auto& row : failed.rows) std::cout << row.at("name") << "\n";
//   auto task = loom::state::Get("tasks", "06ee02f2");  // nullopt: none
//   loom::state::Timeline("trace.json");
#ifndef LOOM_STATE_H_
#define LOOM_STATE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace loom::state {

// One thing: column -> value ("" where there is none).
using Row = std::map<std::string, std::string>;

struct Listing {
  std::vector<std::string> columns;  // in display order
  std::vector<Row> rows;
  int64_t total = 0;                  // rows that match, before the limit
  std::vector<std::string> warnings;  // what the listing lacks
};

// kind: tasks, actors, objects, nodes, jobs, workers, placement-groups;
// filters: "key=value" or "key!=value".
Listing List(const std::string& kind,
             const std::vector<std::string>& filters = {}, int64_t limit = 100,
             bool detail = false);
// By id or a prefix of it; nullopt when there is none.
std::optional<Row> Get(const std::string& kind, const std::string& id);
// kind: tasks (per function: counts by state, run-time percentiles),
// actors (per class), objects (per node); job_hex: one job's tasks.
Listing Summarize(const std::string& kind, const std::string& job_hex = "");
// Writes a Chrome trace of the tasks the head holds to `path`.
void Timeline(const std::string& path, const std::string& job_hex = "");

}  // namespace loom::state

#endif  // LOOM_STATE_H_
