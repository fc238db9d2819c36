// src/common/session.h
//
// Session directories. A session root (default /tmp/loom, or
// LOOM_SESSION_ROOT) holds one directory per cluster started from it,
// session_<time>_<pid>_<n>/, with logs/, sockets/ and the files that daemons
// and `loom` commands find each other by. <root>/session_latest links to
// the newest. Roots stay short: unix socket paths must fit 107 bytes.
//
//   auto dir = CreateSessionDir(DefaultSessionRoot());
//   WriteFileAtomic(*dir + "/address", "127.0.0.1:6379");
//   auto addr = ReadFileToString(LatestSessionDir(root) + "/address");
#ifndef LOOM_COMMON_SESSION_H_
#define LOOM_COMMON_SESSION_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace loom {

inline constexpr size_t kMaxSessionRootLength = 60;

std::string DefaultSessionRoot();

// Creates <root>/session_<time>_<pid>_<n>/{logs,sockets} and points
// <root>/session_latest at it.
absl::StatusOr<std::string> CreateSessionDir(const std::string& root);
std::string LatestSessionDir(const std::string& root);

absl::Status MakeDirs(const std::string& path);
absl::Status WriteFileAtomic(const std::string& path, const std::string& data);
absl::StatusOr<std::string> ReadFileToString(const std::string& path);
// Polls until the file exists and is non-empty.
absl::StatusOr<std::string> WaitForFile(const std::string& path,
                                        absl::Duration timeout);

}  // namespace loom

#endif  // LOOM_COMMON_SESSION_H_
