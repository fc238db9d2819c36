// runtime/timeline.h
//
// A Chrome trace (JSON that Perfetto and chrome://tracing open) of the
// tasks the head holds records of, for `loom timeline` and loom.timeline():
// a process per node and a thread per worker process, a slice per task
// with its phases (fetching arguments, running, storing the result), and
// on a "pending" track per node how long each task waited for its
// arguments and then for a worker; on an "object transfers" track per node
// each object pulled between nodes (a slice on both, an arrow between).
//
//   auto trace = TimelineJson(head, /*job_hex=*/"");  // every job
//   WriteFile("timeline.json", *trace);
#ifndef LOOM_RUNTIME_TIMELINE_H_
#define LOOM_RUNTIME_TIMELINE_H_

#include <string>

#include "absl/status/statusor.h"

namespace loom {

// InvalidArgument for a malformed job id; Unavailable when the head cannot
// be reached. `events`, when set, receives how many trace events it holds.
absl::StatusOr<std::string> TimelineJson(const std::string& head,
                                         const std::string& job_hex,
                                         int64_t* events = nullptr);

}  // namespace loom

#endif  // LOOM_RUNTIME_TIMELINE_H_
