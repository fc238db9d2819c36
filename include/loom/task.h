// include/loom/task.h
//
// loom::Task(fn) builds a call of a LOOM_REMOTE function; Remote(args...)
// submits it and returns an ObjectRef to its result at once. An ObjectRef
// argument is resolved to its value before the task runs, unless the
// function's parameter is an ObjectRef itself: then the task borrows it.
//
//   auto ref = loom::Task(Add).SetResource("CPU", 2).SetMaxRetries(1).Remote(1,
//   2); auto twice = loom::Task(Add).Remote(ref, ref);  // runs after `ref` is
//   ready
#ifndef LOOM_TASK_H_
#define LOOM_TASK_H_

#include <map>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "loom/errors.h"
#include "loom/object_ref.h"
#include "loom/placement_group.h"
#include "loom/serialization.h"

namespace loom {

namespace internal {
// The name LOOM_REMOTE gave `fn`; throws loom::Error saying how to register
// it when there is none.
inline std::string RegisteredName(const void* fn) {
  const std::string* name = FunctionName(fn);
  if (name == nullptr) {
    throw Error("function is not registered: add LOOM_REMOTE(fn) beside it");
  }
  return *name;
}

template <typename Param, typename A>
Arg PackArg(A&& a) {
  using D = std::decay_t<A>;
  using P = std::decay_t<Param>;
  if constexpr (IsObjectRef<D>::value && IsObjectRef<P>::value) {
    // The function takes the ref itself: it travels serialized, unresolved.
    static_assert(std::is_same_v<D, P>, "ObjectRef of the wrong type");
    return Arg{false, Serialize<P>(a)};
  } else if constexpr (IsObjectRef<D>::value) {
    static_assert(std::is_convertible_v<typename D::value_type, P>,
                  "ObjectRef<T> passed where the function takes another type");
    return Arg{true, a.Binary()};
  } else {
    static_assert(std::is_convertible_v<D, P>,
                  "argument does not convert to the function's parameter type");
    return Arg{false, Serialize<P>(static_cast<P>(std::forward<A>(a)))};
  }
}

}  // namespace internal

namespace internal {

// The options a task call sets (TaskCaller's, and PyTaskCaller's in
// loom/cross_language.h); each setter returns the call.
template <typename Derived>
class TaskOptionsBuilder {
 public:
  Derived& SetResource(const std::string& name, double quantity) {
    options_.resources[name] = quantity;
    return Self();
  }
  Derived& SetResources(const std::map<std::string, double>& resources) {
    for (const auto& [k, v] : resources) options_.resources[k] = v;
    return Self();
  }
  // How often a task whose worker died is run again (default 3).
  Derived& SetMaxRetries(int n) {
    options_.max_retries = n;
    return Self();
  }
  // Where it may run: the nodes that fit, in turn (SPREAD); the node with
  // this hex id (only there, or there first when soft); nodes whose labels
  // match every entry. By default: its raylet while it fits, else the
  // least loaded node.
  Derived& SetSpread() {
    options_.strategy.kind = Strategy::kSpread;
    return Self();
  }
  Derived& SetNodeAffinity(const std::string& node_id, bool soft = false) {
    options_.strategy.kind = Strategy::kNodeAffinity;
    options_.strategy.node_id = node_id;
    options_.strategy.soft = soft;
    return Self();
  }
  // Runs inside bundle `index` (-1: any) of the group, on its resources.
  Derived& SetPlacementGroup(const PlacementGroup& group, int index = -1) {
    group_ = group.id();
    bundle_ = index;
    return Self();
  }
  Derived& SetLabelSelector(const std::map<std::string, std::string>& labels) {
    options_.strategy.label_selector = labels;
    return Self();
  }

 protected:
  // The options of one submission: a placement group's bundle demand.
  TaskOptions Options() const {
    TaskOptions options = options_;
    if (!group_.empty()) {
      auto demand = options.resources;
      if (!demand.count("CPU")) demand["CPU"] = 1;  // the task's default
      options.resources = BundleDemand(demand, group_, bundle_);
    }
    return options;
  }
  TaskOptions options_;

 private:
  Derived& Self() { return static_cast<Derived&>(*this); }
  std::string group_;  // a placement group's hex id, or none
  int bundle_ = -1;
};

}  // namespace internal

template <typename R, typename... Params>
class TaskCaller
    : public internal::TaskOptionsBuilder<TaskCaller<R, Params...>> {
 public:
  explicit TaskCaller(R (*fn)(Params...))
      : name_(internal::RegisteredName(reinterpret_cast<const void*>(fn))) {}

  template <typename... Args>
  ObjectRef<R> Remote(Args&&... args) {
    static_assert(sizeof...(Args) == sizeof...(Params),
                  "wrong number of arguments for this remote function");
    internal::RefCollector refs;  // held until the task is done
    std::vector<internal::Arg> packed =
        Pack(std::index_sequence_for<Args...>{}, std::forward<Args>(args)...);
    return ObjectRef<R>(internal::SubmitTask(name_, std::move(packed),
                                             this->Options(), refs.Take()));
  }

 private:
  template <size_t... I, typename... Args>
  std::vector<internal::Arg> Pack(std::index_sequence<I...>, Args&&... args) {
    using ParamTuple = std::tuple<Params...>;
    return {internal::PackArg<std::tuple_element_t<I, ParamTuple>>(
        std::forward<Args>(args))...};
  }

  std::string name_;
};

template <typename R, typename... Params>
TaskCaller<R, Params...> Task(R (*fn)(Params...)) {
  return TaskCaller<R, Params...>(fn);
}

}  // namespace loom

#endif  // LOOM_TASK_H_
