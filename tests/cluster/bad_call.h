// tests/cluster/bad_call.h
//
// What the bad-input tests (bad_input_test.cc, worker_input_test.cc) share:
// a call made with a deadline, and BadCall, one request a daemon or worker
// must refuse with a given code.
//
//   std::vector<BadCall> calls = {
//       Call("kv get: empty key", gcs, &G::KvGet, rpc::KvGetRequest(),
//            grpc::StatusCode::INVALID_ARGUMENT)};
//   grpc::Status s = Invoke([&](auto* c) { return gcs->KvGet(c, r, &reply); });
#ifndef LOOM_TESTS_CLUSTER_BAD_CALL_H_
#define LOOM_TESTS_CLUSTER_BAD_CALL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "src/common/rpc.h"

namespace loom::test {

using Code = grpc::StatusCode;

inline std::string CodeName(Code code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

// call(context) with the cluster token and a deadline kTimeoutMs from now.
template <int64_t kTimeoutMs = 5000, typename Call>
grpc::Status Invoke(Call call) {
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, kTimeoutMs);
  return call(&ctx);
}

// One bad request: what it is, how it is sent, the code it must get.
struct BadCall {
  std::string name;
  std::function<grpc::Status(grpc::ClientContext*)> send;
  Code want;
};

// A BadCall sending `request` through `method` of `stub`.
template <typename Stub, typename Request, typename Reply>
BadCall Call(std::string name, Stub* stub,
             grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                          Reply*),
             Request request, Code want) {
  return {std::move(name),
          [stub, method, request = std::move(request)](grpc::ClientContext* c) {
            Reply reply;
            return (stub->*method)(c, request, &reply);
          },
          want};
}

inline const std::string kHuge(1 << 20, 'x');  // a 1 MiB "id"

}  // namespace loom::test

#endif  // LOOM_TESTS_CLUSTER_BAD_CALL_H_
