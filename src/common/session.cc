#include "src/common/session.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace loom {

std::string DefaultSessionRoot() {
  const char* env = std::getenv("LOOM_SESSION_ROOT");
  return (env && *env) ? env : "/tmp/loom";
}

absl::Status MakeDirs(const std::string& path) {
  std::string partial;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || (path[i] == '/' && i > 0)) {
      partial = path.substr(0, i);
      if (mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
        return absl::InternalError(
            absl::StrCat("mkdir ", partial, ": ", std::strerror(errno)));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CreateSessionDir(const std::string& root) {
  if (root.size() > kMaxSessionRootLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "session root '", root, "' is longer than ", kMaxSessionRootLength,
        " characters; unix socket paths under it would not fit"));
  }
  // Unique even for several clusters started by one process in one second.
  static std::atomic<int> sequence{0};
  int n = sequence++;
  std::string name = absl::StrCat(
      "session_",
      absl::FormatTime("%Y%m%d_%H%M%S", absl::Now(), absl::LocalTimeZone()),
      "_", getpid(), "_", n);
  std::string dir = absl::StrCat(root, "/", name);
  if (access(dir.c_str(), F_OK) == 0) {
    return absl::AlreadyExistsError(absl::StrCat(dir, " exists already"));
  }
  for (const char* sub : {"/logs", "/sockets"}) {
    absl::Status s = MakeDirs(dir + sub);
    if (!s.ok()) return s;
  }
  std::string link = root + "/session_latest";
  // Per call, not per process: threads of one process start nodes at once.
  std::string tmp = absl::StrCat(link, ".", getpid(), ".", n);
  unlink(tmp.c_str());
  if (symlink(name.c_str(), tmp.c_str()) != 0 ||
      rename(tmp.c_str(), link.c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot link ", link, ": ", std::strerror(errno)));
  }
  return dir;
}

std::string LatestSessionDir(const std::string& root) {
  return root + "/session_latest";
}

absl::Status WriteFileAtomic(const std::string& path, const std::string& data) {
  std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << data;
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("rename ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::string> WaitForFile(const std::string& path,
                                        absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    auto data = ReadFileToString(path);
    if (data.ok() && !data->empty()) return data;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("timed out waiting for ", path));
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
}

}  // namespace loom
