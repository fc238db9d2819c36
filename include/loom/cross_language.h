// include/loom/cross_language.h
//
// Calling Python from C++: functions and actor classes named by module and
// name, run by Python workers (the interpreter InitOptions names, which
// must import `loom` and the module). Values cross as msgpack: numbers,
// strings, bytes, vectors and maps, and loom::Tensor as a numpy array (its
// elements in place). A Python exception arrives as loom::TaskError with
// its type name, message and traceback.
//
//   auto sum = loom::Task(loom::PyFunction<int>{"mymod", "add"}).Remote(1, 2);
//   auto counter = loom::Actor(loom::PyActorClass{"mymod", "Counter"})
//                      .Remote(10);
//   auto n = counter.Task(loom::PyActorMethod<int>{"incr"}).Remote(5);
//
// (Python calls C++ through loom.cross_language.cpp_function and
// cpp_actor_class; see docs/cross-language.md.)
#ifndef LOOM_CROSS_LANGUAGE_H_
#define LOOM_CROSS_LANGUAGE_H_

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "loom/actor.h"
#include "loom/object_ref.h"
#include "loom/serialization.h"
#include "loom/task.h"

namespace loom {

// A module-level Python function returning an R.
template <typename R>
struct PyFunction {
  std::string module_name;
  std::string function_name;
};

// A Python class, made an actor.
struct PyActorClass {
  std::string module_name;
  std::string class_name;
};

// A method of a Python actor returning an R.
template <typename R>
struct PyActorMethod {
  std::string method_name;
};

namespace internal {

// Any argument: an ObjectRef passes by reference (its value is resolved
// before the call), anything else as its msgpack bytes.
template <typename A>
Arg PackAny(A&& a) {
  using D = std::decay_t<A>;
  if constexpr (IsObjectRef<D>::value) {
    return Arg{true, a.Binary()};
  } else {
    return Arg{false, Serialize(a)};
  }
}

inline WorkerEnv PythonWorkers() {
  WorkerEnv env;
  env.set = true;
  env.language = WorkerEnv::Language::kPython;
  return env;
}

}  // namespace internal

template <typename R>
class PyTaskCaller : public internal::TaskOptionsBuilder<PyTaskCaller<R>> {
 public:
  explicit PyTaskCaller(const PyFunction<R>& fn)
      : name_(fn.module_name + "." + fn.function_name) {
    if (fn.module_name.empty() || fn.function_name.empty()) {
      throw Error("PyFunction needs a module and a function name");
    }
  }

  template <typename... Args>
  ObjectRef<R> Remote(Args&&... args) {
    internal::RefCollector refs;
    std::vector<internal::Arg> packed = {
        internal::PackAny(std::forward<Args>(args))...};
    internal::TaskOptions options = this->Options();
    options.env = internal::PythonWorkers();
    return ObjectRef<R>(
        internal::SubmitTask(name_, std::move(packed), options, refs.Take()));
  }

 private:
  std::string name_;
};

template <typename R>
PyTaskCaller<R> Task(const PyFunction<R>& fn) {
  return PyTaskCaller<R>(fn);
}

template <typename R>
class PyActorTaskCaller {
 public:
  PyActorTaskCaller(std::string actor, std::string method)
      : actor_(std::move(actor)), method_(std::move(method)) {}

  template <typename... Args>
  ObjectRef<R> Remote(Args&&... args) {
    internal::RefCollector refs;
    std::vector<internal::Arg> packed = {
        internal::PackAny(std::forward<Args>(args))...};
    return ObjectRef<R>(internal::SubmitActorTask(
        actor_, method_, std::move(packed), refs.Take()));
  }

 private:
  std::string actor_;
  std::string method_;
};

// A handle to a Python actor; copies count as handles, as ActorHandle's.
class PyActorHandle {
 public:
  PyActorHandle() = default;
  explicit PyActorHandle(internal::CreatedActor created)
      : handle_(std::move(created)) {}

  template <typename R>
  PyActorTaskCaller<R> Task(const PyActorMethod<R>& method) const {
    if (handle_.IsNil()) throw Error("this PyActorHandle is empty");
    if (method.method_name.empty()) throw Error("PyActorMethod needs a name");
    return PyActorTaskCaller<R>(handle_.Binary(), method.method_name);
  }
  const std::string& Binary() const { return handle_.Binary(); }
  bool IsNil() const { return handle_.IsNil(); }
  MSGPACK_DEFINE(handle_);

 private:
  ActorHandle<PyActorClass> handle_;
};

class PyActorCreator : public internal::ActorOptionsBuilder<PyActorCreator> {
 public:
  explicit PyActorCreator(PyActorClass cls) : cls_(std::move(cls)) {
    if (cls_.module_name.empty() || cls_.class_name.empty()) {
      throw Error("PyActorClass needs a module and a class name");
    }
  }

  template <typename... Args>
  PyActorHandle Remote(Args&&... args) {
    internal::RefCollector refs;
    std::vector<internal::Arg> packed = {
        internal::PackAny(std::forward<Args>(args))...};
    internal::ActorOptions options = this->Options();
    options.env = internal::PythonWorkers();
    return PyActorHandle(internal::CreateActor(
        cls_.module_name + "." + cls_.class_name, cls_.class_name,
        std::move(packed), options, refs.Take()));
  }

 private:
  PyActorClass cls_;
};

inline PyActorCreator Actor(const PyActorClass& cls) {
  return PyActorCreator(cls);
}

inline void Kill(const PyActorHandle& handle, bool no_restart = true) {
  internal::KillActor(handle.Binary(), no_restart);
}

}  // namespace loom

#endif  // LOOM_CROSS_LANGUAGE_H_
