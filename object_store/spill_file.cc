#include "object_store/spill_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace loom {

bool WriteSpillFile(const std::string& path, const uint8_t* data,
                    uint64_t size) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  uint64_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      unlink(path.c_str());
      return false;
    }
    done += n;
  }
  return close(fd) == 0;
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
