// Worker side: runs a pushed task through the function table, and loads the
// user code that fills that table.
#include <cxxabi.h>
#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <typeinfo>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "loom/remote.h"
#include "runtime/core_worker.h"

namespace loom {
namespace {

std::string Demangle(const char* name) {
  int status = 0;
  char* out = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string result = (status == 0 && out) ? out : name;
  std::free(out);
  return result;
}

void SetError(rpc::PushTaskReply* reply, rpc::ErrorInfo::Kind kind,
              std::string type, std::string message, const std::string& task) {
  reply->set_ok(false);
  *reply->mutable_error() =
      MakeError(kind, std::move(message), task, std::move(type));
}

}  // namespace

void ExecuteTask(const rpc::TaskSpec& spec, rpc::PushTaskReply* reply) {
  std::vector<std::string_view> args;
  args.reserve(spec.args_size());
  for (const auto& arg : spec.args()) {
    if (!arg.has_value() && arg.has_ref()) {
      return SetError(reply, rpc::ErrorInfo::INVALID, "UnresolvedArgument",
                      "an ObjectRef argument reached the worker unresolved",
                      spec.function_name());
    }
    args.push_back(arg.value());
  }
  ExecuteTask(spec, args, kInlineThreshold, reply);
}

void ExecuteTask(const rpc::TaskSpec& spec,
                 const std::vector<std::string_view>& args,
                 uint64_t max_return_bytes, rpc::PushTaskReply* reply,
                 void* actor, const std::string& actor_class) {
  const std::string& name = spec.function_name();
  const void* fn = nullptr;
  internal::Invoker invoker = nullptr;
  internal::MethodInvoker method = nullptr;
  if (actor != nullptr) {
    if (!internal::FindMethod(name, &fn, &method) &&
        !internal::FindMethodOf(actor_class, name, &fn, &method)) {
      return SetError(
          reply, rpc::ErrorInfo::INVALID, "MethodNotFound",
          absl::StrCat("method '", name, "' is not registered in worker pid ",
                       getpid(), ": add LOOM_REMOTE(&", name, ")"),
          name);
    }
  } else if (!internal::FindFunction(name, &fn, &invoker)) {
    return SetError(reply, rpc::ErrorInfo::INVALID, "FunctionNotFound",
                    absl::StrCat("function '", name,
                                 "' is not registered in worker pid ", getpid(),
                                 ": name the shared library that defines it "
                                 "in InitOptions::code_search_path"),
                    name);
  }
  auto start = std::chrono::steady_clock::now();
  try {
    // Refs the return value carries, held until lent to the caller.
    internal::RefCollector refs;
    std::string value = method ? method(fn, actor, args) : invoker(fn, args);
    CoreWorker* cw = GlobalCoreWorker();
    if (!refs.noted().empty() && cw != nullptr) {
      std::vector<ObjectId> ids;
      for (const auto& c : refs.noted()) {
        if (auto id = ObjectId::FromBinary(c); id.ok()) ids.push_back(*id);
      }
      cw->LendToCaller(ids, spec.caller(), reply);
    }  // `refs` drops its references below: the caller's units hold them
    if (value.size() > max_return_bytes) {
      SetError(
          reply, rpc::ErrorInfo::INVALID, "ObjectTooLarge",
          absl::StrCat("return value of ", value.size(),
                       " bytes exceeds the inline limit of ", max_return_bytes,
                       " bytes, and this worker has no object store"),
          name);
    } else {
      reply->set_ok(true);
      reply->set_value(std::move(value));
    }
  } catch (const internal::BadArgumentsError& e) {
    SetError(reply, rpc::ErrorInfo::INVALID, "BadArguments", e.what(), name);
  } catch (const std::exception& e) {
    SetError(reply, rpc::ErrorInfo::TASK_ERROR, Demangle(typeid(e).name()),
             e.what(), name);
  } catch (...) {
    const std::type_info* t = abi::__cxa_current_exception_type();
    SetError(reply, rpc::ErrorInfo::TASK_ERROR,
             t ? Demangle(t->name()) : "unknown", "non-standard exception",
             name);
  }
  reply->set_run_us(std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count());
}

absl::Status LoadCode(const std::vector<std::string>& paths) {
  std::vector<std::string> libs;
  for (const auto& path : paths) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
      return absl::NotFoundError(
          absl::StrCat("code search path '", path, "' does not exist"));
    }
    if (S_ISDIR(st.st_mode)) {
      DIR* dir = opendir(path.c_str());
      if (dir == nullptr) {
        return absl::PermissionDeniedError(absl::StrCat("cannot list ", path));
      }
      while (dirent* e = readdir(dir)) {
        if (absl::EndsWith(e->d_name, ".so")) {
          libs.push_back(absl::StrCat(path, "/", e->d_name));
        }
      }
      closedir(dir);
    } else {
      libs.push_back(path);
    }
  }
  for (const auto& lib : libs) {
    if (dlopen(lib.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot load ", lib, ": ", dlerror()));
    }
  }
  return absl::OkStatus();
}

}  // namespace loom
