// src/raylet/memory_monitor.h
//
// The raylet's memory monitor, its parts: how full the node's memory is
// (the container's cgroup limit when there is one, else /proc/meminfo), how
// much a process uses (PSS, else RSS), and which worker to kill when memory
// runs out. The raylet samples every 250 ms and, above the threshold, kills
// the worker PickVictim names; the task's owner then sees OutOfMemoryError.
//
//   auto m = ReadNodeMemory("/");           // used / limit of this node
//   if (m.ok() && m->used > threshold * m->limit)
//     if (auto i = PickVictim(candidates)) Kill(candidates[*i].worker);
//
// Every path is read under `root` ("/" on a real node), so that tests can
// build a fake /sys/fs/cgroup and /proc in a temporary directory.
#ifndef LOOM_SRC_RAYLET_MEMORY_MONITOR_H_
#define LOOM_SRC_RAYLET_MEMORY_MONITOR_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/common/ids.h"

namespace loom::raylet {

struct MemoryUsage {
  int64_t used = 0;    // bytes
  int64_t limit = 0;   // bytes
  std::string source;  // "cgroup v2", "cgroup v1", "/proc/meminfo", ...
};

// The node's memory: the cgroup's limit and usage (v2 memory.max and
// memory.current, v1 memory.limit_in_bytes and memory.usage_in_bytes; the
// inactive page cache, which the kernel reclaims before it kills, is not
// counted as used) when the cgroup has a limit below the machine's memory,
// else MemTotal and MemTotal - MemAvailable from /proc/meminfo. Fails when
// none of these can be read.
absl::StatusOr<MemoryUsage> ReadNodeMemory(const std::string& root);

// The memory a process uses: Pss from /proc/PID/smaps_rollup (shared pages,
// such as those a forked worker shares with its fork server, divided among
// their sharers), else resident pages from /proc/PID/statm. 0 when the
// process is gone.
int64_t ProcessMemory(const std::string& root, pid_t pid);

// A leased worker the monitor may kill.
struct KillCandidate {
  WorkerId worker;
  bool actor = false;      // an actor's worker
  bool retriable = false;  // its task has retries left
  absl::Time granted;      // when its lease was granted
  int64_t memory = 0;      // bytes (ProcessMemory)
};

// The worker to kill, as an index into `candidates` (none when empty):
// like Ray's retriable-LIFO policy, a task with retries left before one
// without, tasks before actors, and among equals the newest lease, which
// has done the least work. Unlike Ray, a worker whose own memory is at least
// `excess` (the bytes above the threshold) comes before any that is not:
// killing a worker that cannot relieve the pressure (a lease its owner keeps
// idle for reuse) loses its work and frees too little. When none would, the
// order above alone decides.
std::optional<size_t> PickVictim(const std::vector<KillCandidate>& candidates,
                                 int64_t excess = 0);

// "1.2 GiB": bytes for people.
std::string FormatBytes(int64_t bytes);

}  // namespace loom::raylet

#endif  // LOOM_SRC_RAYLET_MEMORY_MONITOR_H_
