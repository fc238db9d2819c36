#include "src/common/grpc_cores.h"

#include <grpc/support/cpu.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "spdlog/spdlog.h"

namespace loom::rpc {
namespace {

// gRPC's client channels poll every 5 s on a timer of their own (the
// "backup poller"), for processes in which no thread waits on a completion
// queue. In Loom's processes threads always do (async_call.h,
// async_server.h; a blocking call waits on its own), so it only wakes an
// idle process: off, unless the user set it. Before gRPC's init reads it:
// this runs as the program (or libloom.so) is loaded.
const bool kNoBackupPoller = [] {
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "0", /*overwrite=*/0);
  return true;
}();

}  // namespace

unsigned GrpcCores() {
  static const unsigned cores = [] {
    long online = sysconf(_SC_NPROCESSORS_CONF);  // as libgpr counts
    unsigned machine = online > 0 ? static_cast<unsigned>(online) : 1;
    if (const char* env = std::getenv(kGrpcCoresEnv); env != nullptr) {
      unsigned n = 0;
      if (absl::SimpleAtoi(env, &n) && n >= 1 && n <= 1024) return n;
      spdlog::warn("{}={} is not a number of cores from 1 to 1024: ignored",
                   kGrpcCoresEnv, env);
    }
    return machine;
  }();
  return cores;
}

}  // namespace loom::rpc

// Found before libgpr's own by the dynamic linker: executables export it
// (src/common/CMakeLists.txt), libloom.so precedes libgpr among the Python
// module's libraries.
extern "C" __attribute__((visibility("default"))) unsigned gpr_cpu_num_cores(
    void) {
  return loom::rpc::GrpcCores();
}
