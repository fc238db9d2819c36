// include/loom/remote.h
//
// LOOM_REMOTE registers plain functions, actor factories (functions that
// return a new T*) and actor methods, so that workers can run them by name.
// Put it in the code that both the driver and the workers load (a shared
// library named in InitOptions::code_search_path).
//
//   int Add(int a, int b) { return a + b; }
//   std::string Greet(const std::string& who) { return "hi " + who; }
//   Counter* MakeCounter(int start) { return new Counter(start); }
//   LOOM_REMOTE(Add, Greet, MakeCounter, &Counter::Increment, &Counter::Get);
#ifndef LOOM_REMOTE_H_
#define LOOM_REMOTE_H_

#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "loom/internal/runtime.h"
#include "loom/serialization.h"

namespace loom::internal {

// The arguments a worker received are not the function's (their number or
// their types): the task could not run, and its code never did.
class BadArgumentsError : public Error {
 public:
  using Error::Error;
};

template <typename... A, size_t... I>
std::tuple<std::decay_t<A>...> DecodeArgs(
    const std::vector<std::string_view>& args, std::index_sequence<I...>) {
  BorrowScope borrow;
  try {
    return std::tuple<std::decay_t<A>...>{
        Deserialize<std::decay_t<A>>(args[I])...};
  } catch (const Error& e) {
    throw BadArgumentsError(e.what());
  }
}

// Runs `call` and serializes its result; a factory's new instance (a
// pointer result) goes to the worker creating the actor instead.
template <typename R, typename Call>
std::string SerializeResult(Call&& call) {
  if constexpr (std::is_void_v<R>) {
    call();
    return Serialize(msgpack::type::nil_t());
  } else if constexpr (std::is_pointer_v<R>) {
    R p = call();
    SetCreatedInstance(
        std::shared_ptr<void>(p, [](void* q) { delete static_cast<R>(q); }),
        typeid(std::remove_pointer_t<R>).name());
    return Serialize(msgpack::type::nil_t());
  } else {
    return Serialize(call());
  }
}

template <typename R, typename... A, size_t... I>
std::string InvokeWith(R (*fn)(A...), const std::vector<std::string_view>& args,
                       std::index_sequence<I...> seq) {
  auto values = DecodeArgs<A...>(args, seq);
  return SerializeResult<R>([&] { return fn(std::get<I>(values)...); });
}

template <typename M>
struct MethodTraits;
template <typename C, typename R, typename... A>
struct MethodTraits<R (C::*)(A...)> {
  using Class = C;
  using Result = R;
  static constexpr size_t kArgs = sizeof...(A);
  template <size_t... I>
  static std::string Call(R (C::*m)(A...), C* self,
                          const std::vector<std::string_view>& args,
                          std::index_sequence<I...> seq) {
    auto values = DecodeArgs<A...>(args, seq);
    return SerializeResult<R>(
        [&] { return (self->*m)(std::get<I>(values)...); });
  }
  static auto Indices() { return std::index_sequence_for<A...>{}; }
};
template <typename C, typename R, typename... A>
struct MethodTraits<R (C::*)(A...) const> : MethodTraits<R (C::*)(A...)> {
  template <size_t... I>
  static std::string Call(R (C::*m)(A...) const, C* self,
                          const std::vector<std::string_view>& args,
                          std::index_sequence<I...> seq) {
    auto values = DecodeArgs<A...>(args, seq);
    return SerializeResult<R>(
        [&] { return (self->*m)(std::get<I>(values)...); });
  }
};

template <typename M>
std::string MethodKey(M m) {
  return std::string(reinterpret_cast<const char*>(&m), sizeof(m));
}

template <typename M>
std::string InvokeMethod(const void* method, void* self,
                         const std::vector<std::string_view>& args) {
  using T = MethodTraits<M>;
  if (args.size() != T::kArgs) {
    throw BadArgumentsError("expected " + std::to_string(T::kArgs) +
                            " arguments, got " + std::to_string(args.size()));
  }
  return T::Call(*static_cast<const M*>(method),
                 static_cast<typename T::Class*>(self), args, T::Indices());
}

template <typename R, typename... A>
std::string Invoke(const void* fn, const std::vector<std::string_view>& args) {
  if (args.size() != sizeof...(A)) {
    throw BadArgumentsError("expected " + std::to_string(sizeof...(A)) +
                            " arguments, got " + std::to_string(args.size()));
  }
  auto typed = reinterpret_cast<R (*)(A...)>(const_cast<void*>(fn));
  return InvokeWith(typed, args, std::index_sequence_for<A...>{});
}

template <typename R, typename... A>
void RegisterOne(const std::string& name, R (*fn)(A...)) {
  RegisterFunction(name, reinterpret_cast<const void*>(fn), &Invoke<R, A...>);
}

// "&Counter::Add" registers as "Counter::Add".
template <typename M,
          typename = std::enable_if_t<std::is_member_function_pointer_v<M>>>
void RegisterOne(const std::string& name, M m) {
  std::string clean = name.substr(name.find_first_not_of("& "));
  const M* stored = new M(m);  // lives as long as the process
  RegisterMethod(clean, typeid(typename MethodTraits<M>::Class).name(),
                 MethodKey(m), stored, &InvokeMethod<M>);
}

std::vector<std::string> SplitNames(const char* names);

template <typename... F>
bool RegisterFunctions(const char* names, F... fns) {
  std::vector<std::string> split = SplitNames(names);
  size_t i = 0;
  (RegisterOne(split[i++], fns), ...);
  return true;
}

}  // namespace loom::internal

#define LOOM_CONCAT_INNER(a, b) a##b
#define LOOM_CONCAT(a, b) LOOM_CONCAT_INNER(a, b)
#define LOOM_REMOTE(...)                                             \
  static const bool LOOM_CONCAT(loom_remote_registered_, __LINE__) = \
      ::loom::internal::RegisterFunctions(#__VA_ARGS__, __VA_ARGS__)

#endif  // LOOM_REMOTE_H_
