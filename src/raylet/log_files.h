// src/raylet/log_files.h
//
// A node's log files as `loom logs` reads them: the regular files directly
// in its log directory, by plain name (no path: nothing outside it can be
// named), read in bounded chunks.
//
//   auto files = ListLogFiles(session_dir + "/logs");
//   rpc::ReadLogFileReply reply;
//   absl::Status s = ReadLogFile(dir, req, &reply);  // req.offset < 0: tail
#ifndef LOOM_SRC_RAYLET_LOG_FILES_H_
#define LOOM_SRC_RAYLET_LOG_FILES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/common.pb.h"

namespace loom::raylet {

constexpr int64_t kDefaultLogChunk = 256 << 10;
constexpr int64_t kMaxLogChunk = 1 << 20;

// Sorted by name; NotFound when the directory does not exist.
absl::StatusOr<std::vector<rpc::LogFile>> ListLogFiles(const std::string& dir);
// InvalidArgument for a name that is not a plain file name; NotFound when
// no such regular file exists.
absl::Status ReadLogFile(const std::string& dir,
                         const rpc::ReadLogFileRequest& req,
                         rpc::ReadLogFileReply* reply);

}  // namespace loom::raylet

#endif  // LOOM_SRC_RAYLET_LOG_FILES_H_
