// `loom list`, `loom get` and `loom summary`: the rows of runtime/state_api.h
// as a table, JSON or YAML.
#include <cstdio>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/state_api.h"
#include "runtime/timeline.h"
#include "src/cli/commands.h"

namespace loom::cli {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "loom: %s\n", message.c_str());
  return 1;
}

// Numbers stay numbers in JSON and YAML; ids and names stay strings.
std::string Scalar(const std::string& column, const std::string& value) {
  double number;
  bool text_column = absl::EndsWith(column, "_id") || column == "name" ||
                     column == "class_name";
  if (!text_column && !value.empty() && absl::SimpleAtod(value, &number) &&
      value.find_first_not_of("0123456789.-") == std::string::npos) {
    return value;
  }
  return JsonString(value);
}

void PrintJson(const std::vector<StateRow>& rows, bool one) {
  if (!one) std::printf("[\n");
  for (size_t i = 0; i < rows.size(); ++i) {
    std::printf("%s{", one ? "" : "  ");
    for (size_t j = 0; j < rows[i].size(); ++j) {
      const auto& [column, value] = rows[i][j];
      std::printf("%s%s: %s", j ? ", " : "", JsonString(column).c_str(),
                  Scalar(column, value).c_str());
    }
    std::printf("}%s\n", !one && i + 1 < rows.size() ? "," : "");
  }
  if (!one) std::printf("]\n");
}

void PrintYaml(const std::vector<StateRow>& rows, bool one) {
  for (const auto& row : rows) {
    bool first = true;
    for (const auto& [column, value] : row) {
      std::printf("%s%s: %s\n", one ? "" : (first ? "- " : "  "),
                  column.c_str(), Scalar(column, value).c_str());
      first = false;
    }
  }
  if (rows.empty() && !one) std::printf("[]\n");
}

void PrintTable(const std::vector<std::string>& columns,
                const std::vector<StateRow>& rows) {
  std::vector<size_t> width(columns.size());
  for (size_t c = 0; c < columns.size(); ++c) width[c] = columns[c].size();
  for (const auto& row : rows) {
    for (size_t c = 0; c < columns.size() && c < row.size(); ++c) {
      width[c] = std::max(width[c], std::max<size_t>(row[c].second.size(), 1));
    }
  }
  std::string line;
  for (size_t c = 0; c < columns.size(); ++c) {
    std::string header = absl::AsciiStrToUpper(columns[c]);
    absl::StrAppend(&line, c ? "  " : "", header,
                    c + 1 < columns.size()
                        ? std::string(width[c] - header.size(), ' ')
                        : "");
  }
  std::printf("%s\n", line.c_str());
  for (const auto& row : rows) {
    line.clear();
    for (size_t c = 0; c < columns.size() && c < row.size(); ++c) {
      std::string v = row[c].second.empty() ? "-" : row[c].second;
      absl::StrAppend(
          &line, c ? "  " : "", v,
          c + 1 < columns.size() ? std::string(width[c] - v.size(), ' ') : "");
    }
    std::printf("%s\n", line.c_str());
  }
}

void Print(const StateListing& listing, const std::string& format) {
  if (format == "json") {
    PrintJson(listing.rows, false);
  } else if (format == "yaml") {
    PrintYaml(listing.rows, false);
  } else {
    PrintTable(listing.columns, listing.rows);
  }
  for (const auto& w : listing.warnings) {
    std::fprintf(stderr, "loom: note: %s\n", w.c_str());
  }
}

absl::StatusOr<std::string> Head(const StateArgs& args) {
  return HeadAddress(args.session_root, args.address);
}

}  // namespace

int List(const StateArgs& args) {
  auto head = Head(args);
  if (!head.ok()) return Fail(std::string(head.status().message()));
  StateQuery query{args.kind, {}, args.limit, args.detail};
  for (const auto& text : args.filters) {
    auto f = ParseFilter(text);
    if (!f.ok()) return Fail(std::string(f.status().message()));
    query.filters.push_back(*f);
  }
  auto listing = ListState(*head, query);
  if (!listing.ok()) return Fail(std::string(listing.status().message()));
  Print(*listing, args.format);
  if (listing->total > static_cast<int64_t>(listing->rows.size())) {
    std::fprintf(stderr, "loom: note: %zu of %lld %s shown; --limit for more\n",
                 listing->rows.size(), static_cast<long long>(listing->total),
                 args.kind.c_str());
  }
  return 0;
}

int Get(const StateArgs& args) {
  auto head = Head(args);
  if (!head.ok()) return Fail(std::string(head.status().message()));
  auto row = GetState(*head, args.kind, args.id);
  if (!row.ok()) return Fail(std::string(row.status().message()));
  if (args.format == "json") {
    PrintJson({*row}, true);
  } else {
    PrintYaml({*row}, true);
  }
  return 0;
}

int Timeline(const StateArgs& args, const std::string& out) {
  auto head = Head(args);
  if (!head.ok()) return Fail(std::string(head.status().message()));
  int64_t events = 0;
  auto trace = TimelineJson(*head, args.job, &events);
  if (!trace.ok()) return Fail(std::string(trace.status().message()));
  FILE* f = std::fopen(out.c_str(), "w");
  if (f == nullptr) return Fail("cannot write " + out);
  bool ok = std::fwrite(trace->data(), 1, trace->size(), f) == trace->size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok) return Fail("cannot write " + out);
  std::printf(
      "wrote %lld trace events to %s: open it in https://ui.perfetto.dev or "
      "chrome://tracing\n",
      static_cast<long long>(events), out.c_str());
  return 0;
}

int Summary(const StateArgs& args) {
  auto head = Head(args);
  if (!head.ok()) return Fail(std::string(head.status().message()));
  auto listing = SummarizeState(*head, args.kind, args.job);
  if (!listing.ok()) return Fail(std::string(listing.status().message()));
  Print(*listing, args.format);
  return 0;
}

}  // namespace loom::cli
