#include "src/common/http_tls.h"

#include <civetweb.h>
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace loom {

extern const unsigned char kCivetwebTlsShim[];
extern const size_t kCivetwebTlsShimSize;

namespace {

absl::Status Prepare() {
  // The shim, from memory: its SONAME (libssl.so) is what civetweb's
  // dlopen("libssl.so") matches once it is loaded.
  int fd = memfd_create("libssl.so", MFD_CLOEXEC);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("HTTPS: memfd_create: ", std::strerror(errno)));
  }
  ssize_t n = write(fd, kCivetwebTlsShim, kCivetwebTlsShimSize);
  if (n != static_cast<ssize_t>(kCivetwebTlsShimSize)) {
    close(fd);
    return absl::InternalError("HTTPS: cannot write the OpenSSL shim");
  }
  std::string path = absl::StrCat("/proc/self/fd/", fd);
  if (dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
    close(fd);
    return absl::InternalError(
        absl::StrCat("HTTPS: cannot load OpenSSL: ", dlerror()));
  }
  close(fd);  // the mapping stays
  if ((mg_init_library(MG_FEATURES_TLS) & MG_FEATURES_TLS) == 0) {
    return absl::InternalError(
        "HTTPS: civetweb cannot load OpenSSL (libssl.so, libcrypto.so: "
        "Debian's libssl-dev)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status PrepareCivetwebTls() {
  static const absl::Status* status = new absl::Status(Prepare());
  return *status;
}

}  // namespace loom
