// include/loom/internal/runtime.h
//
// The narrow, non-template bridge between the header-only API templates and
// the runtime library. Not for users: call the API in loom/loom.h.
#ifndef LOOM_INTERNAL_RUNTIME_H_
#define LOOM_INTERNAL_RUNTIME_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace loom::internal {

// One task argument: a serialized value, or an ObjectRef's id.
struct Arg {
  bool is_ref = false;
  std::string data;
};

struct TaskOptions {
  std::map<std::string, double> resources;
  int max_retries = 3;
};

// Each returns or takes object ids as binary strings; each throws
// loom::Error (or a subclass) on failure, including when not initialized.
std::string SubmitTask(const std::string& function_name, std::vector<Arg> args,
                       const TaskOptions& options);
std::string Put(std::string value);
std::vector<std::shared_ptr<const std::string>> Get(
    const std::vector<std::string>& ids, int64_t timeout_ms);
// ready[i] tells whether ids[i] is ready.
std::vector<bool> Wait(const std::vector<std::string>& ids, int num_returns,
                       int64_t timeout_ms);
// Raw objects (Buffer, Tensor): bytes plus a small metadata string, stored
// as they are. GetRaw's view points into the store and `holder` keeps the
// object pinned.
struct RawObject {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  std::string metadata;
  std::shared_ptr<const void> holder;
};
std::string PutRaw(const void* data, uint64_t size,
                   const std::string& metadata);
RawObject GetRaw(const std::string& id, int64_t timeout_ms);

void AddLocalRef(const std::string& id);
void RemoveLocalRef(const std::string& id);

// The function table: LOOM_REMOTE fills it in every process that loads the
// code; workers look functions up by name.
using Invoker = std::string (*)(const void* fn,
                                const std::vector<std::string_view>& args);
void RegisterFunction(const std::string& name, const void* fn, Invoker invoker);
// nullptr when `fn` was never registered.
const std::string* FunctionName(const void* fn);
bool FindFunction(const std::string& name, const void** fn, Invoker* invoker);

}  // namespace loom::internal

#endif  // LOOM_INTERNAL_RUNTIME_H_
