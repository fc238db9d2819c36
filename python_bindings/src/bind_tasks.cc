// Tasks and actors from Python: submitting them, and (in a Python worker)
// running them: the core worker hands each pushed task to Python's
// executor with a TaskReply to fill.
#include "absl/strings/str_cat.h"
#include "bindings.h"
#include "object_store/layout.h"
#include "runtime/streams.h"
#include "runtime/task_args.h"
#include "src/common/wire.h"

namespace loom::py {
namespace {

// A value the executor or a caller hands over: bytes are a msgpack one
// (for C++), (metadata, buffers) a pickled one; viewed in place.
Format ViewValue(const pyb::handle& value, Serialized* out) {
  if (pyb::isinstance<pyb::bytes>(value)) {
    out->buffers.push_back(value.cast<std::string_view>());
    out->size = out->buffers[0].size();
    return Format::kMsgpack;
  }
  auto t = value.cast<pyb::tuple>();
  *out = ViewSerialized(t[0], t[1]);
  return Format::kPickle5;
}

// An inline value's bytes: msgpack bare, as C++ sends and reads it; a
// pickled one in the common layout.
std::string InlineBytes(Format format, const Serialized& v) {
  if (format == Format::kMsgpack) return std::string(v.buffers[0]);
  return EncodeLayout(format, v.metadata, v.buffers);
}

// Arguments: an ObjectRef passes by reference; a value (ViewValue) goes
// inline when small, else in the store first (kept alive by `temps` until
// submitted).
std::vector<internal::Arg> Args(
    const pyb::list& args, std::vector<std::shared_ptr<PyObjectRef>>* temps) {
  std::vector<internal::Arg> out;
  out.reserve(args.size());
  for (const auto& a : args) {
    internal::Arg arg;
    if (pyb::isinstance<PyObjectRef>(a)) {
      arg.is_ref = true;
      arg.data = a.cast<PyObjectRef&>().id().Binary();
      out.push_back(std::move(arg));
      continue;
    }
    Serialized value;
    Format format = ViewValue(a, &value);
    if (value.size > kInlineThreshold && Core().has_store()) {
      absl::StatusOr<ObjectId> id;
      {
        pyb::gil_scoped_release release;
        id = Core().PutLayout(format, value.metadata, value.buffers, {});
      }
      if (!id.ok()) ThrowStatus(id.status());
      temps->push_back(std::make_shared<PyObjectRef>(*id, ""));
      arg.is_ref = true;
      arg.data = id->Binary();
    } else {
      arg.data = InlineBytes(format, value);
    }
    out.push_back(std::move(arg));
  }
  return out;
}

std::vector<ObjectId> TakeRefs(const std::vector<PyObjectRef*>& refs) {
  std::vector<ObjectId> ids;
  for (auto* r : refs) {
    Core().AddRef(r->id());
    ids.push_back(r->id());
  }
  return ids;
}

void DropRefs(const std::vector<ObjectId>& ids) {
  for (const auto& id : ids) Core().RemoveRef(id);
}

pyb::list Refs(const std::vector<ObjectId>& ids) {
  pyb::list out;
  for (const auto& id : ids) out.append(std::make_shared<PyObjectRef>(id, ""));
  return out;
}

// (kind, node id hex, soft, label selector) from loom's options.
internal::Strategy StrategyOf(const pyb::tuple& t) {
  internal::Strategy s;
  s.kind = static_cast<internal::Strategy::Kind>(t[0].cast<int>());
  s.node_id = t[1].cast<std::string>();
  s.soft = t[2].cast<bool>();
  s.label_selector = t[3].cast<std::map<std::string, std::string>>();
  return s;
}

// None (the job's), or (env_vars, packed runtime_env[, "cpp"]): "cpp"
// runs it on C++ workers (a cross-language call).
internal::WorkerEnv EnvOf(const pyb::object& env) {
  internal::WorkerEnv out;
  if (env.is_none()) return out;
  auto t = env.cast<pyb::tuple>();
  out.set = true;
  out.env_vars = t[0].cast<std::map<std::string, std::string>>();
  out.packed = t[1].cast<std::string>();
  if (t.size() > 2 && t[2].cast<std::string>() == "cpp") {
    out.language = internal::WorkerEnv::Language::kCpp;
  }
  return out;
}

std::map<std::string, double> Resources(const pyb::dict& d) {
  std::map<std::string, double> out;
  for (const auto& [k, v] : d) out[k.cast<std::string>()] = v.cast<double>();
  return out;
}

pyb::list SubmitTask(const std::string& name, const std::string& function_key,
                     pyb::list args, pyb::dict resources, int max_retries,
                     int num_returns, std::vector<PyObjectRef*> contained,
                     pyb::tuple strategy, int max_calls, int64_t stream_window,
                     pyb::object env) {
  std::vector<std::shared_ptr<PyObjectRef>> temps;
  internal::TaskOptions options;
  options.max_calls = max_calls;
  options.resources = Resources(resources);
  options.max_retries = max_retries;
  options.num_returns = num_returns;
  options.stream_window = stream_window;
  options.env = EnvOf(env);
  options.function_key = function_key;
  options.strategy = StrategyOf(strategy);
  auto packed = Args(args, &temps);
  std::vector<ObjectId> inner = TakeRefs(contained);
  if (Core().limits_pending_tasks()) {
    pyb::gil_scoped_release release;  // finishing tasks may need the GIL
    Core().WaitForTaskRoom();
  }
  auto ids = Core().SubmitTask(name, std::move(packed), options, inner);
  if (!ids.ok()) {
    DropRefs(inner);
    ThrowStatus(ids.status());
  }
  return Refs(*ids);
}

pyb::tuple CreateActor(const std::string& class_name,
                       const std::string& function_key, pyb::list args,
                       pyb::dict resources, pyb::dict opts,
                       std::vector<PyObjectRef*> contained,
                       pyb::tuple strategy) {
  std::vector<std::shared_ptr<PyObjectRef>> temps;
  internal::ActorOptions options;
  options.resources = Resources(resources);
  options.name = opts["name"].cast<std::string>();
  options.ns = opts["namespace"].cast<std::string>();
  options.max_restarts = opts["max_restarts"].cast<int>();
  options.max_task_retries = opts["max_task_retries"].cast<int>();
  options.max_concurrency = opts["max_concurrency"].cast<int>();
  options.max_pending_calls = opts["max_pending_calls"].cast<int>();
  options.detached = opts["detached"].cast<bool>();
  options.get_if_exists = opts["get_if_exists"].cast<bool>();
  options.strategy = StrategyOf(strategy);
  options.env = EnvOf(opts["env"]);
  auto packed = Args(args, &temps);
  // The factory's name is the function table's key: the creation task
  // carries it as its function key too (see the executor).
  std::vector<ObjectId> inner = TakeRefs(contained);
  absl::StatusOr<CoreWorker::ActorRef> ref;
  {
    pyb::gil_scoped_release release;  // waits for ref arguments
    ref = Core().CreateActor(function_key, class_name, std::move(packed),
                             options, inner);
  }
  if (!ref.ok()) {
    DropRefs(inner);
    ThrowStatus(ref.status());
  }
  pyb::object handle = pyb::none();
  if (ref->handle)
    handle = pyb::cast(std::make_shared<PyObjectRef>(*ref->handle, ref->owner));
  return pyb::make_tuple(pyb::bytes(ref->actor.Binary()), handle);
}

pyb::list SubmitActorTask(pyb::bytes actor_id, const std::string& method,
                          pyb::list args, std::vector<PyObjectRef*> contained,
                          int num_returns, int64_t stream_window) {
  auto actor = ActorId::FromBinary(std::string(actor_id));
  if (!actor.ok()) throw pyb::value_error("bad actor id");
  std::vector<std::shared_ptr<PyObjectRef>> temps;
  auto packed = Args(args, &temps);
  std::vector<ObjectId> inner = TakeRefs(contained);
  auto ids = Core().SubmitActorTask(*actor, method, std::move(packed), inner,
                                    num_returns, stream_window);
  if (!ids.ok()) {
    DropRefs(inner);
    ThrowStatus(ids.status());
  }
  return Refs(*ids);
}

// What a Python executor fills for one task; finish() sends it.
class TaskReply {
 public:
  TaskReply(const rpc::TaskSpec* spec, rpc::PushTaskReply* reply,
            std::function<void()> finish)
      : spec_(spec), reply_(reply), finish_(std::move(finish)) {}

  void SetReturns(pyb::list values, std::vector<PyObjectRef*> contained) {
    Check();
    std::vector<ObjectId> rets = ReturnIds(*spec_);
    if (values.size() != rets.size()) {
      return SetError(
          rpc::ErrorInfo::TASK_ERROR, "ValueError",
          absl::StrCat("the task returned ", values.size(),
                       " values where num_returns is ", rets.size()),
          pyb::bytes());
    }
    CoreWorker& cw = Core();
    reply_->set_node_id(cw.node_id().Binary());
    for (size_t i = 0; i < rets.size(); ++i) {
      // bytes: a msgpack value, for a C++ caller (msgpack_values).
      Serialized v;
      Format format = ViewValue(values[i], &v);
      bool in_store = v.size > kInlineThreshold && cw.has_store();
      std::string value;
      if (in_store) {
        absl::Status s;
        {
          pyb::gil_scoped_release release;
          s = cw.StoreLayout(rets[i], format, v.metadata, v.buffers,
                             HostPort(spec_->caller()));
        }
        if (!s.ok()) {
          return SetError(s.code() == absl::StatusCode::kResourceExhausted
                              ? rpc::ErrorInfo::OBJECT_STORE_FULL
                              : rpc::ErrorInfo::INVALID,
                          "", std::string(s.message()), pyb::bytes());
        }
      } else {
        value = InlineBytes(format, v);
      }
      if (rets.size() == 1) {
        reply_->set_in_store(in_store);
        reply_->set_value(std::move(value));
      } else {
        auto* r = reply_->add_returns();
        r->set_in_store(in_store);
        r->set_value(std::move(value));
      }
    }
    std::vector<ObjectId> inner;
    for (auto* r : contained) inner.push_back(r->id());
    if (!inner.empty()) {
      pyb::gil_scoped_release release;
      cw.LendToCaller(inner, spec_->caller(), reply_);
    }
    reply_->set_ok(true);
  }

  // A streaming generator's items (runtime/streams.h). StreamRoom waits up
  // to timeout_ms for room to send one (true: room, or stopped); the
  // executor loops on it so that a cancel can interrupt the wait.
  bool StreamRoom(int64_t timeout_ms) {
    Check();
    StreamWriter& w = Writer();
    pyb::gil_scoped_release release;
    return w.WaitRoom(absl::Milliseconds(timeout_ms));
  }

  // False: stop producing (the consumer dropped the stream, or the caller
  // is gone).
  // `value`: (metadata, buffers) pickled, or bytes of msgpack (an item for
  // a C++ caller).
  bool ReportItem(int64_t index, pyb::object value,
                  std::vector<PyObjectRef*> contained) {
    Check();
    StreamWriter& w = Writer();
    CoreWorker& cw = Core();
    Serialized v;
    Format format = ViewValue(value, &v);
    bool in_store = v.size > kInlineThreshold && cw.has_store();
    std::vector<ObjectId> inner;
    for (auto* r : contained) inner.push_back(r->id());
    ObjectId id = StreamItemId(*TaskId::FromBinary(spec_->task_id()), index);
    absl::Status s;
    bool go;
    {
      pyb::gil_scoped_release release;
      std::string bytes;
      if (in_store) {
        s = cw.StoreLayout(id, format, v.metadata, v.buffers,
                           HostPort(spec_->caller()));
        // An earlier attempt on this node sealed it already: that copy.
        if (absl::IsAlreadyExists(s)) s = absl::OkStatus();
      } else {
        bytes = InlineBytes(format, v);
      }
      go = s.ok() && w.Write(index, std::move(bytes), in_store, inner);
    }
    if (!s.ok()) ThrowStatus(s);
    return go;
  }

  // Waits for every item's answer; false as for ReportItem.
  bool EndStream() {
    Check();
    StreamWriter& w = Writer();
    pyb::gil_scoped_release release;
    return w.Flush();
  }

  void SetError(int kind, const std::string& type, const std::string& message,
                pyb::bytes data) {
    Check();
    reply_->Clear();
    reply_->set_ok(false);
    rpc::ErrorInfo e = MakeError(static_cast<rpc::ErrorInfo::Kind>(kind),
                                 message, spec_->function_name(), type);
    e.set_data(std::string(data));
    *reply_->mutable_error() = std::move(e);
  }

  void Finish() {
    Check();
    done_ = true;
    pyb::gil_scoped_release release;
    finish_();
  }

 private:
  void Check() const {
    if (done_) throw std::runtime_error("the task's reply was sent already");
  }
  StreamWriter& Writer() {
    if (spec_->stream_window() == 0) {
      throw std::runtime_error("the task is not a streaming generator");
    }
    if (!writer_) writer_ = std::make_unique<StreamWriter>(&Core(), *spec_);
    return *writer_;
  }
  std::unique_ptr<StreamWriter> writer_;
  const rpc::TaskSpec* spec_;
  rpc::PushTaskReply* reply_;
  std::function<void()> finish_;
  bool done_ = false;
};

// Fails a task whose executor could not run it (with the GIL), unless its
// reply was sent already.
void FailTask(TaskReply& task, const std::string& what) {
  try {
    task.SetError(rpc::ErrorInfo::INVALID, "ExecutorError", what, pyb::bytes());
    task.Finish();
  } catch (...) {
  }
}

}  // namespace

// Runs on the core worker's execution threads: hands the task to Python.
void RunPythonTask(const pyb::object& executor, const rpc::TaskSpec& spec,
                   std::vector<CoreWorker::TaskArgView> args,
                   rpc::PushTaskReply* reply, std::function<void()> finish) {
  pyb::gil_scoped_acquire gil;
  // The first task on this execution thread keeps its Python thread state
  // for good: creating one per task costs time and resets thread-locals.
  static thread_local bool kept = [&] {
    gil.inc_ref();
    return true;
  }();
  (void)kept;
  auto task = std::make_shared<TaskReply>(&spec, reply, finish);
  try {
    pyb::list py_args;
    for (auto& a : args) {
      std::shared_ptr<const void> holder = a.holder;
      std::string_view bytes = a.bytes;
      if (!holder) {  // inline: the spec's bytes, copied to outlive it
        auto copy = std::make_shared<std::string>(a.bytes);
        bytes = *copy;
        holder = copy;
      }
      py_args.append(ParseObject(Pinned{bytes.data(), bytes.size(), holder}));
    }
    pyb::dict info;
    info["task_id"] = pyb::bytes(spec.task_id());
    info["function_key"] = spec.function_key();
    info["name"] = spec.function_name();
    info["actor_creation"] = spec.actor_creation();
    info["actor_id"] = pyb::bytes(spec.actor_id());
    info["num_returns"] = std::max(1, spec.num_returns());
    info["attempt"] = spec.attempt();
    info["max_concurrency"] = spec.max_concurrency();
    info["stream_window"] = spec.stream_window();
    info["msgpack_values"] = spec.msgpack_values();
    executor(info, py_args, task);
  } catch (const std::exception& e) {
    // The executor itself failed (not the user's code, which it catches),
    // or an argument could not be read (pybind11's value_error): the task
    // fails, the worker stays. Nothing may unwind into the core worker's
    // execution thread, which would abort the process.
    FailTask(*task, e.what());
  } catch (...) {
    FailTask(*task, "unknown exception");
  }
}

void BindTasks(pyb::module_& m) {
  pyb::class_<TaskReply, std::shared_ptr<TaskReply>>(m, "TaskReply")
      .def("set_returns", &TaskReply::SetReturns)
      .def("set_error", &TaskReply::SetError)
      .def("stream_room", &TaskReply::StreamRoom)
      .def("report_item", &TaskReply::ReportItem)
      .def("end_stream", &TaskReply::EndStream)
      .def("finish", &TaskReply::Finish);
  m.def("submit_task", &SubmitTask, pyb::arg("name"), pyb::arg("function_key"),
        pyb::arg("args"), pyb::arg("resources"), pyb::arg("max_retries"),
        pyb::arg("num_returns"), pyb::arg("contained"), pyb::arg("strategy"),
        pyb::arg("max_calls") = 0, pyb::arg("stream_window") = 0,
        pyb::arg("env") = pyb::none());
  m.def("create_actor", &CreateActor);
  m.def("submit_actor_task", &SubmitActorTask, pyb::arg("actor_id"),
        pyb::arg("method"), pyb::arg("args"), pyb::arg("contained"),
        pyb::arg("num_returns"), pyb::arg("stream_window") = 0);
  // A streaming generator's next item after `index` items: its ref, None
  // once the stream has ended, False on timeout.
  m.def("stream_next",
        [](PyObjectRef& ret, int64_t index, int64_t timeout_ms) -> pyb::object {
          auto next = WaitInterruptibly<std::optional<ObjectId>>(
              timeout_ms,
              [&](int64_t slice) -> std::optional<std::optional<ObjectId>> {
                auto n = Core().StreamNext(ret.id(), index, slice);
                if (!n.ok()) return std::nullopt;
                return *n;
              });
          if (!next) return pyb::bool_(false);
          if (!*next) return pyb::none();
          // The stream's reference passes to the new ref.
          auto ref = std::make_shared<PyObjectRef>(**next, "");
          Core().RemoveRef(**next);
          return pyb::cast(ref);
        });
  // Item `index` of a dynamic generator task this process called.
  m.def("stream_item_ref", [](pyb::bytes task_id, int64_t index) {
    auto task = TaskId::FromBinary(std::string(task_id));
    if (!task.ok()) throw pyb::value_error("bad task id");
    return std::make_shared<PyObjectRef>(StreamItemId(*task, index), "");
  });
  m.def("stream_close", [](PyObjectRef& ret) {
    pyb::gil_scoped_release release;
    Core().CloseStream(ret.id());
  });
  m.def("get_named_actor", [](const std::string& name, const std::string& ns) {
    absl::StatusOr<CoreWorker::ActorRef> ref;
    {
      pyb::gil_scoped_release release;
      ref = Core().GetNamedActor(name, ns);
    }
    if (!ref.ok()) ThrowStatus(ref.status());
    pyb::object handle = pyb::none();
    if (ref->handle) {
      // A handle found by name borrows the actor's handle object.
      std::string owner = ref->owner;
      bool fresh = Core().Borrow(*ref->handle, owner);
      handle = pyb::cast(std::make_shared<PyObjectRef>(*ref->handle, owner));
      if (fresh) {
        pyb::gil_scoped_release release;
        Core().RegisterBorrows({{*ref->handle, owner}});
      }
    }
    return pyb::make_tuple(pyb::bytes(ref->actor.Binary()), handle);
  });
  m.def("kill_actor",
        [](pyb::bytes actor_id, bool no_restart, const std::string& reason) {
          auto actor = ActorId::FromBinary(std::string(actor_id));
          if (!actor.ok()) throw pyb::value_error("bad actor id");
          absl::Status s;
          {
            pyb::gil_scoped_release release;
            s = Core().KillActor(*actor, no_restart, reason);
          }
          if (!s.ok()) ThrowStatus(s);
        });
  m.def("cancel", [](PyObjectRef& ref, bool force, bool recursive) {
    absl::StatusOr<bool> found;
    {
      pyb::gil_scoped_release release;  // waits for the submitter's loop
      found = Core().CancelTask(ref.id(), force, !recursive);
    }
    if (!found.ok()) ThrowStatus(found.status());
    return *found;
  });
}

}  // namespace loom::py
