#include "object_store/spill_file.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace loom {

static absl::Status WriteError(const std::string& path, int err) {
  std::string what = absl::StrCat("cannot write ", path, ": ", strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(what);
  return absl::UnavailableError(what);
}

absl::Status WriteSpillFile(const std::string& path, const uint8_t* data,
                            uint64_t size) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return WriteError(path, errno);
  uint64_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n == 0 ? ENOSPC : errno;
      close(fd);
      unlink(path.c_str());
      return WriteError(path, err);
    }
    done += n;
  }
  if (close(fd) != 0) {
    int err = errno;
    unlink(path.c_str());
    return WriteError(path, err);
  }
  return absl::OkStatus();
}

std::optional<uint64_t> FreeDiskBytes(const std::string& dir) {
  struct statvfs fs;
  if (statvfs(dir.c_str(), &fs) != 0) return std::nullopt;
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
}

bool ReadSpillFile(const std::string& path, uint8_t* out, uint64_t size) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  uint64_t done = 0;
  while (done < size) {
    ssize_t n = read(fd, out + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += n;
  }
  close(fd);
  return done == size;
}

}  // namespace loom
