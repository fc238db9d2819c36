#include "src/raylet/memory_monitor.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "src/common/session.h"

namespace loom::raylet {
namespace {

// The number a one-value file holds; nullopt when unreadable or "max".
std::optional<int64_t> ReadNumber(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return std::nullopt;
  int64_t v = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &v)) {
    return std::nullopt;
  }
  return v;
}

// The value of `key` in a "key value [kB]" file (memory.stat, meminfo,
// smaps_rollup), in bytes when it says kB.
std::optional<int64_t> ReadField(const std::string& path,
                                 absl::string_view key) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t:"), absl::SkipEmpty());
    if (f.size() < 2 || f[0] != key) continue;
    int64_t v = 0;
    if (!absl::SimpleAtoi(f[1], &v)) return std::nullopt;
    if (f.size() >= 3 && f[2] == "kB") v *= 1024;
    return v;
  }
  return std::nullopt;
}

// The cgroup's limit and usage less its inactive page cache; nullopt when
// it has no limit.
std::optional<MemoryUsage> ReadCgroup(const std::string& root) {
  std::string v2 = root + "/sys/fs/cgroup/";
  if (auto limit = ReadNumber(v2 + "memory.max")) {
    auto current = ReadNumber(v2 + "memory.current");
    if (!current) return std::nullopt;
    int64_t cache = ReadField(v2 + "memory.stat", "inactive_file").value_or(0);
    return MemoryUsage{std::max<int64_t>(*current - cache, 0), *limit,
                       "cgroup v2"};
  }
  std::string v1 = root + "/sys/fs/cgroup/memory/";
  auto limit = ReadNumber(v1 + "memory.limit_in_bytes");
  auto usage = ReadNumber(v1 + "memory.usage_in_bytes");
  if (!limit || !usage) return std::nullopt;
  int64_t cache =
      ReadField(v1 + "memory.stat", "total_inactive_file").value_or(0);
  return MemoryUsage{std::max<int64_t>(*usage - cache, 0), *limit, "cgroup v1"};
}

}  // namespace

absl::StatusOr<MemoryUsage> ReadNodeMemory(const std::string& root) {
  std::string meminfo = root + "/proc/meminfo";
  auto total = ReadField(meminfo, "MemTotal");
  auto available = ReadField(meminfo, "MemAvailable");
  std::optional<MemoryUsage> cgroup = ReadCgroup(root);
  // An unlimited v1 cgroup says 2^63 rounded to pages; v2 says "max".
  if (cgroup && cgroup->limit > 0 && (!total || cgroup->limit < *total)) {
    return *cgroup;
  }
  if (!total || !available) {
    return absl::UnavailableError(
        absl::StrCat("cannot read the node's memory from ", meminfo));
  }
  return MemoryUsage{std::max<int64_t>(*total - *available, 0), *total,
                     "/proc/meminfo"};
}

int64_t ProcessMemory(const std::string& root, pid_t pid) {
  std::string proc = absl::StrCat(root, "/proc/", pid, "/");
  if (auto pss = ReadField(proc + "smaps_rollup", "Pss")) return *pss;
  auto statm = ReadFileToString(proc + "statm");
  if (!statm.ok()) return 0;
  std::vector<absl::string_view> f =
      absl::StrSplit(*statm, ' ', absl::SkipEmpty());
  int64_t pages = 0;
  if (f.size() < 2 || !absl::SimpleAtoi(f[1], &pages)) return 0;
  return pages * 4096;
}

std::optional<size_t> PickVictim(const std::vector<KillCandidate>& candidates,
                                 int64_t excess) {
  std::optional<size_t> best;
  // Lower sorts first: (too small to help, actor, not retriable, older).
  auto rank = [&](size_t i) {
    const KillCandidate& c = candidates[i];
    return std::make_tuple(c.memory < excess, c.actor, !c.retriable,
                           -absl::ToUnixNanos(c.granted));
  };
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (!best || rank(i) < rank(*best)) best = i;
  }
  return best;
}

std::string FormatBytes(int64_t bytes) {
  double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) {
    return absl::StrFormat("%.2f GiB", b / (1024.0 * 1024 * 1024));
  }
  return absl::StrFormat("%.1f MiB", b / (1024.0 * 1024));
}

}  // namespace loom::raylet
