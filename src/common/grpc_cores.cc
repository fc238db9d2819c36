#include "src/common/grpc_cores.h"

#include <grpc/support/cpu.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "spdlog/spdlog.h"

namespace loom::rpc {

namespace {

// $LOOM_GRPC_CORES, or 0 when unset or not a number (warned once).
unsigned Told() {
  static const unsigned told = [] {
    const char* env = std::getenv(kGrpcCoresEnv);
    if (env == nullptr) return 0u;
    unsigned n = 0;
    if (absl::SimpleAtoi(env, &n) && n >= 1 && n <= 1024) return n;
    spdlog::warn("{}={} is not a number of cores from 1 to 1024: ignored",
                 kGrpcCoresEnv, env);
    return 0u;
  }();
  return told;
}

}  // namespace

unsigned GrpcCores() { return Told() > 0 ? Told() : 1; }

unsigned LoomCores() {
  if (Told() > 0) return Told();
  long online = sysconf(_SC_NPROCESSORS_CONF);  // as libgpr counts
  return online > 0 ? static_cast<unsigned>(online) : 1;
}

}  // namespace loom::rpc

// Found before libgpr's own by the dynamic linker: executables export it
// (src/common/CMakeLists.txt), libloom.so precedes libgpr among the Python
// module's libraries.
extern "C" __attribute__((visibility("default"))) unsigned gpr_cpu_num_cores(
    void) {
  return loom::rpc::GrpcCores();
}
