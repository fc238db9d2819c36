// runtime/state_api.h
//
// The cluster's state as rows, through the head: tasks (from the head's
// task records), actors, nodes, jobs, placement groups, workers and objects
// (from each node's raylet). `loom list|get|summary` and loom.util.state
// both print or return these rows, so the two agree on names and filters.
//
//   StateQuery q{.kind = "tasks", .limit = 100};
//   q.filters.push_back(*ParseFilter("state=FAILED"));
//   auto listing = ListState(head, q);      // InvalidArgument: bad filter
//   for (const StateRow& row : listing->rows) ...
#ifndef LOOM_RUNTIME_STATE_API_H_
#define LOOM_RUNTIME_STATE_API_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/common/json.h"  // JsonString, for listings as JSON
#include "src/common/state_filter.h"

namespace loom {

struct StateQuery {
  std::string kind;  // tasks, actors, objects, nodes, jobs, workers,
                     // placement-groups
  std::vector<rpc::StateFilter> filters;
  int64_t limit = 100;
  bool detail = false;  // every column, not just the table's
};

struct StateListing {
  std::vector<std::string> columns;  // in display order
  std::vector<StateRow> rows;
  int64_t total = 0;  // rows that match, before the limit
  // What the listing lacks, said plainly (evicted task records, nodes that
  // did not answer, ...).
  std::vector<std::string> warnings;
};

// The binary job id that `hex` spells: InvalidArgument unless it is
// 2 * JobId::kSize hex digits.
absl::StatusOr<std::string> JobIdFromHex(const std::string& hex);
// The head's task records (Gcs.ListTasks): InvalidArgument for a bad
// filter, Unavailable when the head cannot be reached.
absl::StatusOr<rpc::ListTasksReply> ListTaskRecords(
    const std::string& head, const rpc::ListTasksRequest& req,
    int64_t timeout_ms);

// The kinds ListState knows.
const std::vector<std::string>& StateKinds();
// InvalidArgument for an unknown kind or filter; Unavailable when the head
// cannot be reached.
absl::StatusOr<StateListing> ListState(const std::string& head,
                                       const StateQuery& query);
// One thing by its id (or a prefix of it), every column. NotFound, or
// InvalidArgument when the prefix names several.
absl::StatusOr<StateRow> GetState(const std::string& head,
                                  const std::string& kind,
                                  const std::string& id);
// `loom summary tasks|actors|objects`: one row per function, class or
// node (job_hex empty: every job).
absl::StatusOr<StateListing> SummarizeState(const std::string& head,
                                            const std::string& kind,
                                            const std::string& job_hex = "");

}  // namespace loom

#endif  // LOOM_RUNTIME_STATE_API_H_
