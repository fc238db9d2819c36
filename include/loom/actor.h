// include/loom/actor.h
//
// Actors: stateful remote objects. A factory (a LOOM_REMOTE function that
// returns a new T*) creates the instance in a worker of its own; calls go
// straight from the caller to it and run one at a time, in the order each
// caller submitted them. The head places actors, restarts one whose process
// dies (up to SetMaxRestarts; the factory runs again), and finds them by
// name.
//
//   Counter* MakeCounter(int start) { return new Counter(start); }
//   LOOM_REMOTE(MakeCounter, &Counter::Add);
//
//   auto counter = loom::Actor(MakeCounter).SetName("hits").Remote(10);
//   loom::ObjectRef<int> r = counter.Task(&Counter::Add).Remote(5);
//   auto same = loom::GetActor<Counter>("hits");
//   loom::Kill(counter);
#ifndef LOOM_ACTOR_H_
#define LOOM_ACTOR_H_

#include <map>
#include <string>
#include <typeinfo>
#include <utility>

#include "loom/errors.h"
#include "loom/object_ref.h"
#include "loom/placement_group.h"
#include "loom/remote.h"
#include "loom/task.h"

namespace loom {

enum class ActorLifetime { kNonDetached, kDetached };

template <typename T>
class ActorHandle {
 public:
  ActorHandle() = default;
  explicit ActorHandle(std::string id) : id_(std::move(id)) {}
  // From CreateActor or GetNamedActor: holds a reference to the object
  // whose references count the handles (borrowed when another process
  // created the actor).
  explicit ActorHandle(internal::CreatedActor created)
      : id_(std::move(created.actor_id)) {
    if (created.handle_object.empty()) return;
    if (!created.owner.empty()) {
      internal::BorrowRef(created.handle_object, created.owner);
    }
    life_ = ObjectRef<std::string>(std::move(created.handle_object));
  }

  // A call of one of T's registered methods.
  template <typename M>
  auto Task(M method) const;

  // The actor id, 16 bytes.
  const std::string& Binary() const { return id_; }
  bool IsNil() const { return id_.empty(); }
  MSGPACK_DEFINE(id_, life_);

 private:
  std::string id_;
  ObjectRef<std::string> life_;  // empty for named and detached actors
};

template <typename T, typename R, typename... Params>
class ActorTaskCaller {
 public:
  ActorTaskCaller(std::string actor, std::string method)
      : actor_(std::move(actor)), method_(std::move(method)) {}

  template <typename... Args>
  ObjectRef<R> Remote(Args&&... args) {
    static_assert(sizeof...(Args) == sizeof...(Params),
                  "wrong number of arguments for this method");
    internal::RefCollector refs;
    std::vector<internal::Arg> packed = {
        internal::PackArg<Params>(std::forward<Args>(args))...};
    return ObjectRef<R>(internal::SubmitActorTask(
        actor_, method_, std::move(packed), refs.Take()));
  }

 private:
  std::string actor_;
  std::string method_;
};

namespace internal {
template <typename T, typename M>
struct ActorCallerFor;
template <typename T, typename C, typename R, typename... P>
struct ActorCallerFor<T, R (C::*)(P...)> {
  using type = ActorTaskCaller<T, R, P...>;
};
template <typename T, typename C, typename R, typename... P>
struct ActorCallerFor<T, R (C::*)(P...) const> {
  using type = ActorTaskCaller<T, R, P...>;
};
}  // namespace internal

template <typename T>
template <typename M>
auto ActorHandle<T>::Task(M method) const {
  static_assert(std::is_base_of_v<typename internal::MethodTraits<M>::Class, T>,
                "the method is not a member of the actor's class");
  const std::string* name = internal::MethodName(
      typeid(typename internal::MethodTraits<M>::Class).name(),
      internal::MethodKey(method));
  if (name == nullptr) {
    throw Error("method is not registered: add LOOM_REMOTE(&Class::Method)");
  }
  if (id_.empty()) throw Error("this ActorHandle is empty");
  return typename internal::ActorCallerFor<T, M>::type(id_, *name);
}

namespace internal {

// The options an actor creation sets (ActorCreator's, and
// PyActorCreator's in loom/cross_language.h); each setter returns it.
template <typename Derived>
class ActorOptionsBuilder {
 public:
  Derived& SetResource(const std::string& name, double quantity) {
    options_.resources[name] = quantity;
    return Self();
  }
  Derived& SetResources(const std::map<std::string, double>& r) {
    for (const auto& [k, v] : r) options_.resources[k] = v;
    return Self();
  }
  // Where it may run (as TaskCaller's): SPREAD is the head's least-loaded
  // choice anyway; node affinity and label selectors restrict the nodes.
  Derived& SetNodeAffinity(const std::string& node_id, bool soft = false) {
    options_.strategy.kind = Strategy::kNodeAffinity;
    options_.strategy.node_id = node_id;
    options_.strategy.soft = soft;
    return Self();
  }
  // Placed inside bundle `index` (-1: any) of the group, on its resources.
  Derived& SetPlacementGroup(const PlacementGroup& group, int index = -1) {
    group_ = group.id();
    bundle_ = index;
    return Self();
  }
  Derived& SetLabelSelector(const std::map<std::string, std::string>& labels) {
    options_.strategy.label_selector = labels;
    return Self();
  }
  Derived& SetName(const std::string& name) {
    options_.name = name;
    return Self();
  }
  Derived& SetNamespace(const std::string& ns) {
    options_.ns = ns;
    return Self();
  }
  // How often a dead actor is restarted (-1: without limit; default 0).
  Derived& SetMaxRestarts(int n) {
    options_.max_restarts = n;
    return Self();
  }
  // How often a call cut short by the actor's death is sent again to the
  // restarted actor (default 0: it fails with ActorDiedError).
  Derived& SetMaxTaskRetries(int n) {
    options_.max_task_retries = n;
    return Self();
  }
  // Detached actors outlive their driver, until killed.
  Derived& SetDetached(bool detached = true) {
    options_.detached = detached;
    return Self();
  }
  Derived& SetLifetime(ActorLifetime lifetime) {
    return SetDetached(lifetime == ActorLifetime::kDetached);
  }
  // Calls run on a pool of this many threads (default 1: one at a time).
  Derived& SetMaxConcurrency(int n) {
    options_.max_concurrency = n;
    return Self();
  }
  // A caller with this many calls not yet answered gets
  // PendingCallsLimitExceededError at once for the next (0: no limit).
  Derived& SetMaxPendingCalls(int n) {
    options_.max_pending_calls = n;
    return Self();
  }
  // With a name already taken: return that actor instead of failing.
  Derived& SetGetIfExists(bool get = true) {
    options_.get_if_exists = get;
    return Self();
  }

 protected:
  // The options of one creation: a placement group's bundle demand.
  ActorOptions Options() const {
    ActorOptions options = options_;
    if (!group_.empty()) {
      options.resources = BundleDemand(options.resources, group_, bundle_);
    }
    return options;
  }
  ActorOptions options_;

 private:
  Derived& Self() { return static_cast<Derived&>(*this); }
  std::string group_;  // a placement group's hex id, or none
  int bundle_ = -1;
};

}  // namespace internal

template <typename T, typename... Params>
class ActorCreator
    : public internal::ActorOptionsBuilder<ActorCreator<T, Params...>> {
 public:
  explicit ActorCreator(T* (*factory)(Params...))
      : factory_(
            internal::RegisteredName(reinterpret_cast<const void*>(factory))) {}

  template <typename... Args>
  ActorHandle<T> Remote(Args&&... args) {
    static_assert(sizeof...(Args) == sizeof...(Params),
                  "wrong number of arguments for this factory");
    internal::RefCollector refs;
    std::vector<internal::Arg> packed = {
        internal::PackArg<Params>(std::forward<Args>(args))...};
    return ActorHandle<T>(internal::CreateActor(factory_, typeid(T).name(),
                                                std::move(packed),
                                                this->Options(), refs.Take()));
  }

 private:
  std::string factory_;
};

template <typename T, typename... Params>
ActorCreator<T, Params...> Actor(T* (*factory)(Params...)) {
  return ActorCreator<T, Params...>(factory);
}

// The actor named `name` in namespace `ns`; throws loom::Error if none.
template <typename T>
ActorHandle<T> GetActor(const std::string& name, const std::string& ns = "") {
  return ActorHandle<T>(internal::GetNamedActor(name, ns));
}

// Stops the actor's process. Unless no_restart is false, it is not
// restarted; calls not yet run fail with ActorDiedError. (An actor that is
// not detached also stops when its last handle anywhere is gone, and when
// its creator's job ends.)
template <typename T>
void Kill(const ActorHandle<T>& handle, bool no_restart = true) {
  internal::KillActor(handle.Binary(), no_restart);
}

}  // namespace loom

#endif  // LOOM_ACTOR_H_
