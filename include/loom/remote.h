// include/loom/remote.h
//
// LOOM_REMOTE registers plain functions so that workers can run them by
// name. Put it in the code that both the driver and the workers load (a
// shared library named in InitOptions::code_search_path).
//
//   int Add(int a, int b) { return a + b; }
//   std::string Greet(const std::string& who) { return "hi " + who; }
//   LOOM_REMOTE(Add, Greet);
#ifndef LOOM_REMOTE_H_
#define LOOM_REMOTE_H_

#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "loom/internal/runtime.h"
#include "loom/serialization.h"

namespace loom::internal {

template <typename R, typename... A, size_t... I>
std::string InvokeWith(R (*fn)(A...), const std::vector<std::string_view>& args,
                       std::index_sequence<I...>) {
  auto values = [&] {
    BorrowScope borrow;
    return std::tuple<std::decay_t<A>...>{
        Deserialize<std::decay_t<A>>(args[I])...};
  }();
  if constexpr (std::is_void_v<R>) {
    fn(std::get<I>(values)...);
    return Serialize(msgpack::type::nil_t());
  } else {
    return Serialize(fn(std::get<I>(values)...));
  }
}

template <typename R, typename... A>
std::string Invoke(const void* fn, const std::vector<std::string_view>& args) {
  if (args.size() != sizeof...(A)) {
    throw Error("expected " + std::to_string(sizeof...(A)) +
                " arguments, got " + std::to_string(args.size()));
  }
  auto typed = reinterpret_cast<R (*)(A...)>(const_cast<void*>(fn));
  return InvokeWith(typed, args, std::index_sequence_for<A...>{});
}

template <typename R, typename... A>
void RegisterOne(const std::string& name, R (*fn)(A...)) {
  RegisterFunction(name, reinterpret_cast<const void*>(fn), &Invoke<R, A...>);
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
