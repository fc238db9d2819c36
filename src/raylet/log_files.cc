#include "src/raylet/log_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace loom::raylet {
namespace {

absl::Status CheckName(const std::string& name) {
  if (name.empty() || name.size() > 255 || name == "." || name == ".." ||
      name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", name.substr(0, 64),
        "' is not a log file name (a plain name, as `loom logs` lists)"));
  }
  return absl::OkStatus();
}

int64_t MtimeMs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 +
         st.st_mtim.tv_nsec / 1000000;
}

}  // namespace

absl::StatusOr<std::vector<rpc::LogFile>> ListLogFiles(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no log directory ", dir, ": ", std::strerror(errno)));
  }
  std::vector<rpc::LogFile> out;
  while (dirent* e = readdir(d)) {
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode)) {
      continue;
    }
    rpc::LogFile f;
    f.set_name(e->d_name);
    f.set_size(st.st_size);
    f.set_mtime_ms(MtimeMs(st));
    out.push_back(std::move(f));
  }
  closedir(d);
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.name() < b.name(); });
  return out;
}

absl::Status ReadLogFile(const std::string& dir,
                         const rpc::ReadLogFileRequest& req,
                         rpc::ReadLogFileReply* reply) {
  if (auto s = CheckName(req.name()); !s.ok()) return s;
  if (req.max_bytes() < 0 || req.max_bytes() > kMaxLogChunk) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_bytes must be in [0, ", kMaxLogChunk, "]"));
  }
  std::string path = absl::StrCat(dir, "/", req.name());
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat(
        "no log file '", req.name(), "' on this node: ", std::strerror(errno)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::NotFoundError(
        absl::StrCat("'", req.name(), "' is not a regular file"));
  }
  int64_t size = st.st_size;
  int64_t offset = req.offset() < 0 ? std::max<int64_t>(0, size + req.offset())
                                    : std::min<int64_t>(req.offset(), size);
  int64_t want = req.max_bytes() ? req.max_bytes() : kDefaultLogChunk;
  std::string data(std::min(want, size - offset), '\0');
  ssize_t n = data.empty() ? 0 : pread(fd, data.data(), data.size(), offset);
  int err = errno;
  close(fd);
  if (n < 0) {
    return absl::InternalError(
        absl::StrCat("reading '", req.name(), "': ", std::strerror(err)));
  }
  data.resize(n);
  reply->set_data(std::move(data));
  reply->set_offset(offset);
  reply->set_size(size);
  return absl::OkStatus();
}

}  // namespace loom::raylet
