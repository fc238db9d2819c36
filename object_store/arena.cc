#include "object_store/arena.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace loom {

absl::StatusOr<std::unique_ptr<Arena>> Arena::Create(uint64_t size) {
  if (size == 0) return absl::InvalidArgumentError("arena size must be > 0");
  int fd = memfd_create("loom-object-store", MFD_CLOEXEC);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("memfd_create: ", std::strerror(errno)));
  }
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int err = errno;
    close(fd);
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot size the arena to ", size, " bytes: ", std::strerror(err)));
  }
  return Map(fd, size);
}

absl::StatusOr<std::unique_ptr<Arena>> Arena::Map(int fd, uint64_t size) {
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    int err = errno;
    close(fd);
    return absl::InternalError(
        absl::StrCat("mmap of ", size, " bytes: ", std::strerror(err)));
  }
  return std::unique_ptr<Arena>(
      new Arena(fd, static_cast<uint8_t*>(base), size));
}

Arena::~Arena() {
  munmap(base_, size_);
  close(fd_);
}

}  // namespace loom
