// runtime/log_reader.h
//
// LogStream: any node's log files, read through the head (Gcs.ListLogs and
// ReadLog, which ask the node's raylet), for `loom logs` and
// loom.util.state.get_log. A query names one file, or a worker process (a
// pid on a node, or an actor): then what that process printed, from its
// C++ output files and its "(pid=N) " lines in the job's Python ones.
//
//   auto stream = LogStream::Open(head, {.file = "raylet.log", .tail = 20});
//   while (!(*stream)->done()) {
//     auto text = (*stream)->Next();
//     ...print *text...
//     if ((*stream)->caught_up()) ...wait a little (following)...
//   }
#ifndef LOOM_RUNTIME_LOG_READER_H_
#define LOOM_RUNTIME_LOG_READER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/gcs.pb.h"

namespace loom {

struct LogQuery {
  std::string file;     // a name `loom logs` lists
  std::string node_id;  // hex, or a prefix of it
  std::string node_ip;
  std::string actor_id;   // hex: its process's output
  std::string task_id;    // hex (or a prefix): the process that ran it
  std::string worker_id;  // hex (or a prefix): that worker process's
  int64_t pid = 0;        // this process's output (on the node named)
  int64_t tail = -1;      // only the last lines of each file (-1: all)
  bool follow = false;    // then what is appended, until the caller stops
};

// Every alive node's log files (node_id_hex empty: all), through the head.
absl::StatusOr<rpc::ListLogsReply> ListLogs(const std::string& head,
                                            const std::string& node_id_hex);

class LogStream {
 public:
  // NotFound or InvalidArgument, saying which, when the query names no
  // file, node, actor or process that exists.
  static absl::StatusOr<std::unique_ptr<LogStream>> Open(
      const std::string& head, const LogQuery& query);
  ~LogStream();
  // The text appended since the last call (whole lines for a process's
  // output), up to about 1 MiB; "" when there is nothing new.
  absl::StatusOr<std::string> Next();
  // Everything was returned and the query does not follow.
  bool done() const { return done_; }
  // The last Next reached the end of every file: wait before the next.
  bool caught_up() const { return caught_up_; }

 private:
  struct Target;
  LogStream(std::string head, LogQuery query, std::vector<Target> targets);
  absl::StatusOr<std::string> ReadTarget(Target& t);

  std::string head_;
  LogQuery query_;
  std::vector<Target> targets_;
  bool done_ = false;
  bool caught_up_ = false;
};

}  // namespace loom

#endif  // LOOM_RUNTIME_LOG_READER_H_
