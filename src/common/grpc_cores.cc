#include "src/common/grpc_cores.h"

#include <grpc/support/cpu.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "spdlog/spdlog.h"

namespace loom::rpc {

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
