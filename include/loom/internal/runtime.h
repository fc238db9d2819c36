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

// Where a task or actor may run (see SchedulingStrategy in common.proto).
struct Strategy {
  enum Kind { kDefault = 0, kSpread = 1, kNodeAffinity = 2 };
  Kind kind = kDefault;
  std::string node_id;  // hex; kNodeAffinity
  bool soft = false;
  std::map<std::string, std::string> label_selector;
};

// A task's or actor's own worker environment (Python's runtime_env):
// variables set in its workers, and the whole of it as the language runtime
// packed it. Unset: the job's.
struct WorkerEnv {
  bool set = false;
  // The language of its workers (kJob: the job's). Cross-language calls
  // set it: a C++ function from Python, a Python one from C++.
  enum class Language { kJob, kCpp, kPython };
  Language language = Language::kJob;
  std::map<std::string, std::string> env_vars;
  std::string packed;
};

struct TaskOptions {
  std::map<std::string, double> resources;
  Strategy strategy;
  int max_retries = 3;
  int num_returns = 1;
  std::string function_key;  // Python: the function table's key
  // A worker runs this function at most max_calls times, then exits and
  // is replaced (0: no limit).
  int max_calls = 0;
  // Not 0: a streaming generator whose executor runs at most this many
  // items ahead of the consumer (< 0: no bound); see runtime/streams.h.
  int64_t stream_window = 0;
  WorkerEnv env;
  // The caller's values are msgpack (the C++ API): a Python executor
  // returns msgpack too.
  bool msgpack_values = false;
};

// Each returns or takes object ids as binary strings; each throws
// loom::Error (or a subclass) on failure, including when not initialized.
// `contained`: ids of the ObjectRefs serialized inside the value or the
// arguments, one reference each (RefCollector::Take), which the runtime
// keeps as long as the value needs them and then drops.
std::string SubmitTask(const std::string& function_name, std::vector<Arg> args,
                       const TaskOptions& options,
                       std::vector<std::string> contained = {});
std::string Put(std::string value, std::vector<std::string> contained = {});
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
  // The object is a msgpack value (a task's return): data and size are its
  // msgpack bytes, and metadata is empty.
  bool msgpack = false;
  std::shared_ptr<const void> holder;
};
std::string PutRaw(const void* data, uint64_t size,
                   const std::string& metadata);
RawObject GetRaw(const std::string& id, int64_t timeout_ms);

void AddLocalRef(const std::string& id);
void RemoveLocalRef(const std::string& id);

// ObjectRefs inside values. Serializing one notes its id with the innermost
// RefCollector alive on this thread, which takes a reference on it (so the
// value's refs outlive the value), and returns its owner's address;
// deserializing one makes this process a borrower, registered with the
// owner before the enclosing BorrowScope ends (at once outside any).
std::string NoteSerializedRef(const std::string& id);
void BorrowRef(const std::string& id, const std::string& owner);

class RefCollector {
 public:
  RefCollector();
  // Drops the references not taken.
  ~RefCollector();
  RefCollector(const RefCollector&) = delete;
  RefCollector& operator=(const RefCollector&) = delete;
  void Note(const std::string& id) { ids_.push_back(id); }
  // The ids noted, with one reference each, now the caller's.
  std::vector<std::string> Take() { return std::move(ids_); }
  const std::vector<std::string>& noted() const { return ids_; }

 private:
  std::vector<std::string> ids_;
  RefCollector* outer_;
};

// Batches the borrower registrations of the refs deserialized while alive:
// one blocking call per owner when the outermost scope on this thread ends.
class BorrowScope {
 public:
  BorrowScope();
  ~BorrowScope();
  BorrowScope(const BorrowScope&) = delete;
  BorrowScope& operator=(const BorrowScope&) = delete;
};

// The function table: LOOM_REMOTE fills it in every process that loads the
// code; workers look functions up by name.
using Invoker = std::string (*)(const void* fn,
                                const std::vector<std::string_view>& args);
void RegisterFunction(const std::string& name, const void* fn, Invoker invoker);
// nullptr when `fn` was never registered.
const std::string* FunctionName(const void* fn);
bool FindFunction(const std::string& name, const void** fn, Invoker* invoker);

// Actor methods, registered by LOOM_REMOTE(&Class::Method) under
// "Class::Method". `method` points at the member pointer; `self` is the
// actor's instance.
using MethodInvoker = std::string (*)(
    const void* method, void* self, const std::vector<std::string_view>& args);
// `key` is the member pointer's bytes, `cls` the class's typeid name.
void RegisterMethod(const std::string& name, const char* cls, std::string key,
                    const void* method, MethodInvoker invoker);
const std::string* MethodName(const char* cls, const std::string& key);
bool FindMethod(const std::string& name, const void** method,
                MethodInvoker* invoker);
// The method `short_name` ("Add") of class `cls` (a typeid name), as
// registered under "Class::Add": how other languages name methods.
bool FindMethodOf(const std::string& cls, const std::string& short_name,
                  const void** method, MethodInvoker* invoker);
// A factory (a LOOM_REMOTE function returning T*) hands its new instance,
// with T's typeid name, to the worker that creates the actor through this
// slot (per thread).
void SetCreatedInstance(std::shared_ptr<void> instance, const char* cls);
std::shared_ptr<void> TakeCreatedInstance(std::string* cls);

// Actors (see loom/actor.h).
struct ActorOptions {
  std::map<std::string, double> resources;
  Strategy strategy;
  std::string name, ns;
  int max_restarts = 0;
  int max_task_retries = 0;
  bool detached = false;
  bool get_if_exists = false;
  int max_concurrency = 1;
  int max_pending_calls = 0;  // 0: without limit
  WorkerEnv env;
  bool msgpack_values = false;  // as in TaskOptions
};
// The actor's id, and (for an actor that is neither named nor detached)
// the id of an object whose references are the actor's handles: when the
// last one anywhere is gone, the actor stops.
struct CreatedActor {
  std::string actor_id;
  std::string handle_object;  // empty: detached
  std::string owner;          // of handle_object; empty: this process
};
CreatedActor CreateActor(const std::string& factory,
                         const std::string& class_name, std::vector<Arg> args,
                         const ActorOptions& options,
                         std::vector<std::string> contained);
std::string SubmitActorTask(const std::string& actor_id,
                            const std::string& method, std::vector<Arg> args,
                            std::vector<std::string> contained);
// Throws loom::Error when no actor has that name in that namespace.
CreatedActor GetNamedActor(const std::string& name, const std::string& ns);
void KillActor(const std::string& actor_id, bool no_restart);

}  // namespace loom::internal

#endif  // LOOM_INTERNAL_RUNTIME_H_
