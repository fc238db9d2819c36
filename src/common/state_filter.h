// src/common/state_filter.h
//
// The filters of `loom list` and loom.util.state: "key=value" or
// "key!=value" on a column of the rows listed. Values match ignoring case;
// an id column (its key ends in "_id") also matches a prefix of the id, so
// that the short ids tables print can be pasted back.
//
//   auto f = ParseFilter("state!=FINISHED");        // rpc::StateFilter
//   if (!f.ok()) ...                                 // names what is wrong
//   if (FilterMatches(*f, "RUNNING")) ...
#ifndef LOOM_COMMON_STATE_FILTER_H_
#define LOOM_COMMON_STATE_FILTER_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/gcs.pb.h"

namespace loom {

// One listed thing: (column, value) pairs in display order.
using StateRow = std::vector<std::pair<std::string, std::string>>;

// InvalidArgument unless `text` is key=value or key!=value with a key.
absl::StatusOr<rpc::StateFilter> ParseFilter(const std::string& text);
// InvalidArgument naming the columns when a filter's key is not one of
// `columns` or its op is neither "=" nor "!=".
absl::Status CheckFilters(const std::vector<rpc::StateFilter>& filters,
                          const std::vector<std::string>& columns,
                          std::string_view what);
// Whether `value` (the row's, of the filter's column) passes the filter.
bool FilterMatches(const rpc::StateFilter& filter, std::string_view value);
// Whether the row passes every filter (a column it lacks reads as "").
bool RowMatches(const StateRow& row,
                const std::vector<rpc::StateFilter>& filters);

}  // namespace loom

#endif  // LOOM_COMMON_STATE_FILTER_H_
