#include "src/common/state_filter.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace loom {

absl::StatusOr<rpc::StateFilter> ParseFilter(const std::string& text) {
  rpc::StateFilter f;
  size_t at = text.find("!=");
  if (at != std::string::npos) {
    f.set_op("!=");
    f.set_value(text.substr(at + 2));
  } else if ((at = text.find('=')) != std::string::npos) {
    f.set_op("=");
    f.set_value(text.substr(at + 1));
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad filter '", text, "': expected key=value or key!=value"));
  }
  f.set_key(std::string(absl::StripAsciiWhitespace(text.substr(0, at))));
  if (f.key().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad filter '", text, "': no key before the ", f.op()));
  }
  return f;
}

absl::Status CheckFilters(const std::vector<rpc::StateFilter>& filters,
                          const std::vector<std::string>& columns,
                          std::string_view what) {
  for (const auto& f : filters) {
    if (f.op() != "=" && f.op() != "!=") {
      return absl::InvalidArgumentError(
          absl::StrCat("bad filter op '", f.op(), "': use = or !="));
    }
    bool known = false;
    for (const auto& c : columns) known = known || c == f.key();
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown filter key '", f.key(), "' for ",
                       absl::string_view(what.data(), what.size()),
                       "; one of: ", absl::StrJoin(columns, ", ")));
    }
  }
  return absl::OkStatus();
}

bool FilterMatches(const rpc::StateFilter& filter, std::string_view text) {
  // Debian's Abseil has a string_view of its own.
  absl::string_view value(text.data(), text.size());
  bool equal = absl::EqualsIgnoreCase(value, filter.value());
  if (!equal && absl::EndsWith(filter.key(), "_id") &&
      !filter.value().empty()) {
    equal = absl::StartsWithIgnoreCase(value, filter.value());
  }
  return filter.op() == "!=" ? !equal : equal;
}

bool RowMatches(const StateRow& row,
                const std::vector<rpc::StateFilter>& filters) {
  for (const auto& f : filters) {
    std::string_view value;
    for (const auto& [column, v] : row) {
      if (column == f.key()) value = v;
    }
    if (!FilterMatches(f, value)) return false;
  }
  return true;
}

}  // namespace loom
