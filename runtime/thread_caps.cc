#include "runtime/thread_caps.h"

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>


namespace loom {
namespace {

// A library's function that sets its thread count, found in a loaded
// object whose file name contains `library`.
struct Setter {
  const char* library;
  const char* symbol;
  enum Kind { kProcess, kProcessWide, kThread } kind;
};

constexpr Setter kSetters[] = {
    // OpenBLAS, plain, with the 64-bit interface's suffix, and as numpy's
    // and scipy's wheels bundle it (scipy_openblas).
    {"openblas", "openblas_set_num_threads", Setter::kProcess},
    {"openblas", "openblas_set_num_threads64_", Setter::kProcess},
    {"openblas", "scipy_openblas_set_num_threads", Setter::kProcess},
    {"openblas", "scipy_openblas_set_num_threads64_", Setter::kProcess},
    {"mkl_rt", "MKL_Set_Num_Threads", Setter::kProcess},
    {"blis", "bli_thread_set_num_threads", Setter::kProcessWide},
    // GNU, LLVM and Intel OpenMP: a setting of the calling thread.
    {"gomp", "omp_set_num_threads", Setter::kThread},
    {"libomp", "omp_set_num_threads", Setter::kThread},
    {"iomp", "omp_set_num_threads", Setter::kThread},
};

std::atomic<int> g_process_cap{0};
thread_local int t_thread_cap = 0;

std::vector<std::string> LoadedObjects() {
  std::vector<std::string> names;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* out) {
        if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0') {
          static_cast<std::vector<std::string>*>(out)->push_back(
              info->dlpi_name);
        }
        return 0;
      },
      &names);
  return names;
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

bool UserSetThreadCounts() {
  static const bool user_set = [] {
    for (const char* name : kThreadCapVariables) {
      if (std::getenv(name) != nullptr) return true;
    }
    return false;
  }();
  return user_set;
}

int ThreadCapFor(double cpus) {
  if (UserSetThreadCounts()) return 0;
  if (!std::isfinite(cpus) || cpus < 1) return 1;
  return static_cast<int>(std::min(std::floor(cpus + 1e-9), 1e6));
}

void SetThreadCapEnv(int cap) {
  if (cap <= 0) return;
  std::string value = std::to_string(cap);
  for (const char* name : kThreadCapVariables) {
    setenv(name, value.c_str(), 1);
  }
}

void ApplyThreadCap(int cap) {
  if (cap <= 0) return;
  bool process = g_process_cap.exchange(cap) != cap;
  bool thread = t_thread_cap != cap;
  t_thread_cap = cap;
  if (!process && !thread) return;
  for (const std::string& path : LoadedObjects()) {
    std::string base = BaseName(path);
    void* handle = nullptr;
    for (const Setter& s : kSetters) {
      if (base.find(s.library) == std::string::npos) continue;
      if (s.kind == Setter::kThread ? !thread : !process) continue;
      if (handle == nullptr) {
        handle = dlopen(path.c_str(), RTLD_LAZY | RTLD_NOLOAD);
        if (handle == nullptr) break;
      }
      void* fn = dlsym(handle, s.symbol);
      if (fn == nullptr) continue;
      if (s.kind == Setter::kProcessWide) {
        reinterpret_cast<void (*)(int64_t)>(fn)(cap);
      } else {
        reinterpret_cast<void (*)(int)>(fn)(cap);
      }
    }
    if (handle != nullptr) dlclose(handle);
  }
}

}  // namespace loom
