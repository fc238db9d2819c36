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
  absl::flat_hash_map<std::string, std::pair<const void*, MethodInvoker>>
      methods ABSL_GUARDED_BY(mu);
  // (class, member pointer bytes) -> name
  absl::flat_hash_map<std::string, std::string> method_names
      ABSL_GUARDED_BY(mu);
  // (class, "Add") -> "Counter::Add"
  absl::flat_hash_map<std::string, std::string> short_names ABSL_GUARDED_BY(mu);
};

thread_local std::shared_ptr<void> tls_created;
thread_local std::string tls_created_class;

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

void RegisterMethod(const std::string& name, const char* cls, std::string key,
                    const void* method, MethodInvoker invoker) {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  r.methods[name] = {method, invoker};
  r.method_names[std::string(cls) + '\0' + key] = name;
  size_t colons = name.rfind("::");
  if (colons != std::string::npos) {
    r.short_names[std::string(cls) + '\0' + name.substr(colons + 2)] = name;
  }
}

const std::string* MethodName(const char* cls, const std::string& key) {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  auto it = r.method_names.find(std::string(cls) + '\0' + key);
  return it == r.method_names.end() ? nullptr : &it->second;
}

bool FindMethod(const std::string& name, const void** method,
                MethodInvoker* invoker) {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  auto it = r.methods.find(name);
  if (it == r.methods.end()) return false;
  *method = it->second.first;
  *invoker = it->second.second;
  return true;
}

bool FindMethodOf(const std::string& cls, const std::string& short_name,
                  const void** method, MethodInvoker* invoker) {
  std::string name;
  {
    Registry& r = GetRegistry();
    absl::MutexLock lock(&r.mu);
    auto it = r.short_names.find(cls + '\0' + short_name);
    if (it == r.short_names.end()) return false;
    name = it->second;
  }
  return FindMethod(name, method, invoker);
}

void SetCreatedInstance(std::shared_ptr<void> instance, const char* cls) {
  tls_created = std::move(instance);
  tls_created_class = cls;
}

std::shared_ptr<void> TakeCreatedInstance(std::string* cls) {
  *cls = std::move(tls_created_class);
  return std::move(tls_created);
}

}  // namespace loom::internal
