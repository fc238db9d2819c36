// The function table that LOOM_REMOTE fills, one per process.
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "loom/internal/runtime.h"

namespace loom::internal {
namespace {

struct Registry {
  absl::Mutex mu;
  absl::flat_hash_map<std::string, std::pair<const void*, Invoker>> by_name
      ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<const void*, std::string> by_fn ABSL_GUARDED_BY(mu);
};

Registry& GetRegistry() {
  static Registry* registry = new Registry;
  return *registry;
}

}  // namespace

std::vector<std::string> SplitNames(const char* names) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(names, ',')) {
    out.emplace_back(absl::StripAsciiWhitespace(part));
  }
  return out;
}

void RegisterFunction(const std::string& name, const void* fn,
                      Invoker invoker) {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  r.by_name[name] = {fn, invoker};
  r.by_fn[fn] = name;
}

const std::string* FunctionName(const void* fn) {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  auto it = r.by_fn.find(fn);
  return it == r.by_fn.end() ? nullptr : &it->second;
}

bool FindFunction(const std::string& name, const void** fn, Invoker* invoker) {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  auto it = r.by_name.find(name);
  if (it == r.by_name.end()) return false;
  *fn = it->second.first;
  *invoker = it->second.second;
  return true;
}

}  // namespace loom::internal
