// The API edge: loom::Init/Shutdown and the internal bridge that the
// header templates call. Statuses and error values become exceptions here.
#include "loom/api.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "runtime/core_worker.h"
#include "runtime/driver_logs.h"
#include "runtime/local_cluster.h"
#include "src/common/logging.h"

namespace loom {
namespace {

absl::Mutex g_mu;
std::unique_ptr<CoreWorker> g_owned ABSL_GUARDED_BY(g_mu);
std::optional<ClusterHandle> g_cluster ABSL_GUARDED_BY(g_mu);
std::string g_session_dir ABSL_GUARDED_BY(g_mu);
std::atomic<CoreWorker*> g_core_worker{nullptr};
// A C++ driver's printer of its workers' output (see driver_logs.h).
std::thread g_printer ABSL_GUARDED_BY(g_mu);

// How long Shutdown waits for the last lines workers printed.
constexpr absl::Duration kLastLinesWait = absl::Seconds(2);

void PrintWorkerLines(DriverLogs* logs) {
  while (true) {
    std::vector<DriverLogs::Line> lines = logs->Take(absl::Seconds(1));
    for (const auto& l : lines) {
      std::string text = DriverLogs::Format(l) + "\n";
      std::fwrite(text.data(), 1, text.size(), l.is_err ? stderr : stdout);
    }
    if (lines.empty() && !g_core_worker.load()) return;  // shut down, drained
    std::fflush(stdout);
    std::fflush(stderr);
  }
}

[[noreturn]] void Throw(const absl::Status& s) {
  if (s.code() == absl::StatusCode::kResourceExhausted) {
    throw ObjectStoreFullError(std::string(s.message()));
  }
  throw Error(std::string(s.message()));
}

[[noreturn]] void Throw(const rpc::ErrorInfo& e) {
  switch (e.kind()) {
    case rpc::ErrorInfo::TASK_ERROR:
      throw TaskError(e.type(), e.message(), e.task_name());
    case rpc::ErrorInfo::WORKER_CRASHED:
      throw WorkerCrashedError(e.message());
    case rpc::ErrorInfo::INFEASIBLE:
      throw InfeasibleError(e.task_name() + ": " + e.message());
    case rpc::ErrorInfo::OWNER_DIED:
      throw OwnerDiedError(e.message());
    case rpc::ErrorInfo::ACTOR_DIED:
      throw ActorDiedError(e.task_name().empty()
                               ? e.message()
                               : e.task_name() + ": " + e.message());
    case rpc::ErrorInfo::OBJECT_STORE_FULL:
      throw ObjectStoreFullError(e.task_name() + ": " + e.message());
    case rpc::ErrorInfo::OBJECT_LOST:
      throw ObjectLostError(e.task_name().empty()
                                ? e.message()
                                : e.task_name() + ": " + e.message());
    case rpc::ErrorInfo::OUT_OF_MEMORY:
      throw OutOfMemoryError(e.task_name() + ": " + e.message());
    default:
      throw Error(e.task_name().empty() ? e.message()
                                        : e.task_name() + ": " + e.message());
  }
}

[[noreturn]] void ThrowTimeout(int64_t timeout_ms) {
  throw GetTimeoutError("Get timed out after " + std::to_string(timeout_ms) +
                        " ms");
}

CoreWorker* Current() {
  CoreWorker* cw = g_core_worker.load();
  if (cw == nullptr) throw Error("loom::Init() has not been called");
  return cw;
}

std::vector<ObjectId> ParseIds(const std::vector<std::string>& ids) {
  std::vector<ObjectId> out;
  out.reserve(ids.size());
  for (const auto& id : ids) {
    auto parsed = ObjectId::FromBinary(id);
    if (!parsed.ok()) Throw(parsed.status());
    out.push_back(*parsed);
  }
  return out;
}

// The interpreter's absolute path: a name with a slash as it is (made
// absolute), else found on PATH; empty when there is none.
std::string FindExecutable(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) != 0) return "";
    if (name[0] == '/') return name;
    char cwd[4096];
    return getcwd(cwd, sizeof(cwd)) ? absl::StrCat(cwd, "/", name) : "";
  }
  const char* path = std::getenv("PATH");
  for (absl::string_view dir :
       absl::StrSplit(path ? path : "/usr/bin:/bin", ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", name);
    if (candidate[0] == '/' && access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return "";
}

// The Python workers a C++ driver's Python calls run on (unset when no
// interpreter is found: those calls then fail saying so).
rpc::WorkerRuntime PythonWorkersFor(const InitOptions& options) {
  std::string name = options.python_executable;
  const char* env = std::getenv("LOOM_PYTHON");
  if (name.empty()) name = env && *env ? env : "python3";
  std::string exe = FindExecutable(name);
  if (exe.empty()) return rpc::WorkerRuntime();
  char cwd[4096];
  rpc::WorkerRuntime r = PythonRuntime(
      exe, options.python_path, getcwd(cwd, sizeof(cwd)) ? cwd : "/", "");
  // Before the interpreter's own sys.path, which has loom.
  (*r.mutable_env_vars())["LOOM_PYTHON_PATH_MODE"] = "prepend";
  return r;
}

}  // namespace

CoreWorker* GlobalCoreWorker() { return g_core_worker.load(); }
void SetGlobalCoreWorker(CoreWorker* cw) { g_core_worker.store(cw); }

void Init(const InitOptions& options) {
  InitWithRuntime(options, rpc::WorkerRuntime());
}

rpc::WorkerRuntime PythonRuntime(const std::string& executable,
                                 const std::vector<std::string>& path,
                                 const std::string& cwd,
                                 const std::string& preimport) {
  rpc::WorkerRuntime r;
  r.set_language(rpc::WorkerRuntime::PYTHON);
  r.set_python_executable(executable);
  for (const auto& p : path) r.add_python_path(p);
  r.set_cwd(cwd);
  if (!preimport.empty()) (*r.mutable_env_vars())["LOOM_PREIMPORT"] = preimport;
  return r;
}

std::string SessionDir() {
  absl::MutexLock lock(&g_mu);
  return g_session_dir;
}

void InitWithRuntime(const InitOptions& options,
                     const rpc::WorkerRuntime& runtime) {
  absl::MutexLock lock(&g_mu);
  if (g_core_worker.load() != nullptr)
    throw Error("Loom is already initialized");
  static bool logging = [] {
    InitLogging("driver", "");
    if (std::getenv("LOOM_LOG_LEVEL") == nullptr) {
      spdlog::set_level(spdlog::level::warn);  // drivers stay quiet by default
    }
    return true;
  }();
  (void)logging;
  CoreWorker::Options cw_options;
  cw_options.code_search_path = options.code_search_path;
  cw_options.log_to_driver = options.log_to_driver;
  cw_options.max_lineage_bytes = options.max_lineage_bytes;
  cw_options.runtime = runtime;
  if (runtime.language() != rpc::WorkerRuntime::PYTHON) {
    cw_options.python_workers = PythonWorkersFor(options);
  }
  if (options.address.empty()) {
    ClusterOptions cluster;
    cluster.session_root = options.session_root;
    cluster.num_cpus = options.num_cpus;
    cluster.num_gpus = options.num_gpus;
    cluster.resources = options.resources;
    cluster.object_store_memory = options.object_store_memory;
    cluster.no_auth = options.no_auth;
    auto started = StartCluster(cluster);
    if (!started.ok()) Throw(started.status());
    g_cluster = std::move(*started);
    cw_options.gcs_address = g_cluster->gcs_address;
    cw_options.raylet_address = g_cluster->raylet_address;
    cw_options.store_socket = g_cluster->session_dir + "/sockets/store";
    g_session_dir = g_cluster->session_dir;
  } else {
    std::string address = options.address;
    if (address == "auto") {
      auto resolved = ResolveAutoAddress(options.session_root);
      if (!resolved.ok()) Throw(resolved.status());
      address = *resolved;
    }
    if (auto s = UseTokenOf(address, options.session_root); !s.ok()) {
      Throw(s);
    }
    auto raylet = FindLocalRaylet(address, options.session_root);
    if (!raylet.ok()) Throw(raylet.status());
    cw_options.gcs_address = address;
    cw_options.raylet_address = raylet->address;
    // The driver serves its objects on its node's address, which workers
    // on other nodes can reach.
    cw_options.host = raylet->address.substr(0, raylet->address.rfind(':'));
    if (!raylet->session_dir.empty()) {
      cw_options.store_socket = raylet->session_dir + "/sockets/store";
    }
    g_session_dir = raylet->session_dir;
  }
  auto cw = CoreWorker::Create(cw_options);
  if (!cw.ok()) {
    if (g_cluster) StopCluster(*g_cluster);
    g_cluster.reset();
    Throw(cw.status());
  }
  g_owned = std::move(*cw);
  g_core_worker.store(g_owned.get());
  // A language runtime's driver (Python) prints them itself.
  if (runtime.language() != rpc::WorkerRuntime::PYTHON &&
      g_owned->driver_logs() != nullptr) {
    g_printer = std::thread(PrintWorkerLines, g_owned->driver_logs());
  }
  static bool registered = [] {
    std::atexit([] { Shutdown(); });
    return true;
  }();
  (void)registered;
}

void Shutdown() {
  absl::MutexLock lock(&g_mu);
  if (g_owned == nullptr) return;
  if (DriverLogs* logs = g_owned->driver_logs(); logs && g_printer.joinable()) {
    // What workers printed before now is printed before Shutdown returns.
    absl::Status s = logs->Flush(kLastLinesWait);
    if (!s.ok()) spdlog::info("last worker output: {}", s.ToString());
    logs->Shutdown();
  }
  g_core_worker.store(nullptr);
  if (g_printer.joinable()) g_printer.join();
  g_owned->Shutdown();
  g_owned.reset();
  if (g_cluster) StopCluster(*g_cluster);
  g_cluster.reset();
}

bool IsInitialized() { return g_core_worker.load() != nullptr; }

std::vector<int> GetGpuIds() {
  CoreWorker* cw = g_core_worker.load();
  return cw ? cw->gpu_ids() : std::vector<int>{};
}

namespace {

std::string TensorMetadata(const Tensor& t) {
  std::string m = "tensor;" + t.dtype() + ";";
  for (size_t i = 0; i < t.shape().size(); ++i) {
    if (i) m += ",";
    m += std::to_string(t.shape()[i]);
  }
  return m;
}

}  // namespace

ObjectRef<Buffer> Put(const Buffer& buffer) {
  return ObjectRef<Buffer>(
      internal::PutRaw(buffer.data(), buffer.size(), "buffer"));
}

ObjectRef<Tensor> Put(const Tensor& tensor) {
  if (tensor.dtype().empty() || tensor.dtype().find(';') != std::string::npos) {
    throw Error("tensor dtype must be a non-empty name without ';'");
  }
  return ObjectRef<Tensor>(
      internal::PutRaw(tensor.data(), tensor.nbytes(), TensorMetadata(tensor)));
}

std::shared_ptr<Buffer> Get(const ObjectRef<Buffer>& ref, int64_t timeout_ms) {
  internal::RawObject raw = internal::GetRaw(ref.Binary(), timeout_ms);
  if (raw.msgpack) throw Error("object is a msgpack value, not a Buffer");
  return std::make_shared<Buffer>(raw.data, raw.size, raw.holder);
}

std::shared_ptr<Tensor> Get(const ObjectRef<Tensor>& ref, int64_t timeout_ms) {
  internal::RawObject raw = internal::GetRaw(ref.Binary(), timeout_ms);
  if (raw.msgpack) {
    // A task's returned Tensor (C++ or numpy from Python): viewed in place.
    msgpack::object_handle h;
    try {
      h = msgpack::unpack(reinterpret_cast<const char*>(raw.data), raw.size,
                          &internal::ReferenceInPlace);
    } catch (const std::exception& e) {
      throw Error(std::string("cannot read the value: ") + e.what());
    }
    const msgpack::object& o = h.get();
    if (o.type != msgpack::type::EXT ||
        o.via.ext.type() != internal::kTensorExt) {
      throw Error("object is a msgpack value, not a Tensor");
    }
    return std::make_shared<Tensor>(
        internal::TensorFromExt(o.via.ext.data(), o.via.ext.size, raw.holder));
  }
  std::vector<std::string> parts = absl::StrSplit(raw.metadata, ';');
  if (parts.size() != 3 || parts[0] != "tensor") {
    throw Error("object is not a Tensor (metadata '" + raw.metadata + "')");
  }
  std::vector<int64_t> shape;
  for (absl::string_view d : absl::StrSplit(parts[2], ',', absl::SkipEmpty())) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(d, &v)) throw Error("bad tensor shape in metadata");
    shape.push_back(v);
  }
  return std::make_shared<Tensor>(parts[1], std::move(shape),
                                  Buffer(raw.data, raw.size, raw.holder));
}

namespace internal {

std::string PutRaw(const void* data, uint64_t size,
                   const std::string& metadata) {
  auto id = Current()->PutRaw(
      std::string_view(static_cast<const char*>(data), size), metadata);
  if (!id.ok()) Throw(id.status());
  return id->Binary();
}

RawObject GetRaw(const std::string& id, int64_t timeout_ms) {
  auto parsed = ObjectId::FromBinary(id);
  if (!parsed.ok()) Throw(parsed.status());
  auto result = Current()->GetRaw(*parsed, timeout_ms);
  if (!result) {
    ThrowTimeout(timeout_ms);
  }
  if (result->error) Throw(*result->error);
  return std::move(result->object);
}

std::string SubmitTask(const std::string& function_name, std::vector<Arg> args,
                       const TaskOptions& options,
                       std::vector<std::string> contained) {
  TaskOptions with = options;
  with.msgpack_values = true;  // the C++ API's values
  Current()->WaitForTaskRoom();
  auto id = Current()->SubmitTask(function_name, std::move(args), with,
                                  ParseIds(contained));
  if (!id.ok()) {
    for (const auto& c : contained) RemoveLocalRef(c);
    Throw(id.status());
  }
  return (*id)[0].Binary();
}

std::string Put(std::string value, std::vector<std::string> contained) {
  auto id = Current()->Put(std::move(value), ParseIds(contained));
  if (!id.ok()) {
    for (const auto& c : contained) RemoveLocalRef(c);
    Throw(id.status());
  }
  return id->Binary();
}

std::vector<std::shared_ptr<const std::string>> Get(
    const std::vector<std::string>& ids, int64_t timeout_ms) {
  auto results = Current()->Get(ParseIds(ids), timeout_ms);
  if (!results) {
    ThrowTimeout(timeout_ms);
  }
  std::vector<std::shared_ptr<const std::string>> out;
  out.reserve(results->size());
  for (auto& r : *results) {
    if (r.error) Throw(*r.error);
    out.push_back(std::move(r.value));
  }
  return out;
}

std::vector<bool> Wait(const std::vector<std::string>& ids, int num_returns,
                       int64_t timeout_ms) {
  if (num_returns < 0 || static_cast<size_t>(num_returns) > ids.size()) {
    throw Error("num_returns must be between 0 and the number of refs");
  }
  return Current()->Wait(ParseIds(ids), num_returns, timeout_ms);
}

CreatedActor CreateActor(const std::string& factory,
                         const std::string& class_name, std::vector<Arg> args,
                         const ActorOptions& options,
                         std::vector<std::string> contained) {
  ActorOptions with = options;
  with.msgpack_values = true;
  auto id = Current()->CreateActor(factory, class_name, std::move(args), with,
                                   ParseIds(contained));
  if (!id.ok()) {
    for (const auto& c : contained) RemoveLocalRef(c);
    Throw(id.status());
  }
  return CreatedActor{id->actor.Binary(),
                      id->handle ? id->handle->Binary() : "", id->owner};
}

std::string SubmitActorTask(const std::string& actor_id,
                            const std::string& method, std::vector<Arg> args,
                            std::vector<std::string> contained) {
  auto actor = ActorId::FromBinary(actor_id);
  if (!actor.ok()) Throw(actor.status());
  auto id = Current()->SubmitActorTask(*actor, method, std::move(args),
                                       ParseIds(contained), 1, 0, true);
  if (!id.ok()) {
    for (const auto& c : contained) RemoveLocalRef(c);
    if (id.status().code() == absl::StatusCode::kAborted) {
      throw PendingCallsLimitExceededError(std::string(id.status().message()));
    }
    Throw(id.status());
  }
  return (*id)[0].Binary();
}

CreatedActor GetNamedActor(const std::string& name, const std::string& ns) {
  auto id = Current()->GetNamedActor(name, ns);
  if (!id.ok()) Throw(id.status());
  return CreatedActor{id->actor.Binary(),
                      id->handle ? id->handle->Binary() : "", id->owner};
}

void KillActor(const std::string& actor_id, bool no_restart) {
  auto actor = ActorId::FromBinary(actor_id);
  if (!actor.ok()) Throw(actor.status());
  if (auto s = Current()->KillActor(*actor, no_restart); !s.ok()) Throw(s);
}

void AddLocalRef(const std::string& id) {
  if (CoreWorker* cw = g_core_worker.load()) {
    if (auto parsed = ObjectId::FromBinary(id); parsed.ok())
      cw->AddRef(*parsed);
  }
}

namespace {
thread_local RefCollector* tls_collector = nullptr;
thread_local int tls_borrow_depth = 0;
thread_local std::vector<std::pair<ObjectId, std::string>>* tls_borrows =
    nullptr;
}  // namespace

RefCollector::RefCollector() : outer_(tls_collector) { tls_collector = this; }
RefCollector::~RefCollector() {
  tls_collector = outer_;
  for (const auto& id : ids_) RemoveLocalRef(id);
}

BorrowScope::BorrowScope() { ++tls_borrow_depth; }
BorrowScope::~BorrowScope() {
  if (--tls_borrow_depth > 0 || tls_borrows == nullptr) return;
  std::unique_ptr<std::vector<std::pair<ObjectId, std::string>>> pending(
      tls_borrows);
  tls_borrows = nullptr;
  if (CoreWorker* cw = g_core_worker.load()) cw->RegisterBorrows(*pending);
}

std::string NoteSerializedRef(const std::string& id) {
  if (tls_collector) {
    AddLocalRef(id);
    tls_collector->Note(id);
  }
  CoreWorker* cw = g_core_worker.load();
  auto parsed = ObjectId::FromBinary(id);
  if (cw == nullptr || !parsed.ok()) return "";
  return cw->OwnerOf(*parsed);
}

void BorrowRef(const std::string& id, const std::string& owner) {
  CoreWorker* cw = g_core_worker.load();
  auto parsed = ObjectId::FromBinary(id);
  if (cw == nullptr || !parsed.ok()) return;
  if (!cw->Borrow(*parsed, owner)) return;
  if (tls_borrow_depth == 0) return cw->RegisterBorrows({{*parsed, owner}});
  if (tls_borrows == nullptr) {
    tls_borrows = new std::vector<std::pair<ObjectId, std::string>>();
  }
  tls_borrows->emplace_back(*parsed, owner);
}

void RemoveLocalRef(const std::string& id) {
  if (CoreWorker* cw = g_core_worker.load()) {
    if (auto parsed = ObjectId::FromBinary(id); parsed.ok()) {
      cw->RemoveRef(*parsed);
    }
  }
}

}  // namespace internal
}  // namespace loom
