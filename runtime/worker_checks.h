// runtime/worker_checks.h
//
// What a worker accepts: the checks every message a core worker receives
// passes before any of it is used. A malformed field is InvalidArgument,
// naming the field; who may ask for what (leases, actors, the raylet's
// control calls) is CoreWorker::AdmitPush and CheckControlKey.
//
//   if (auto s = ValidatePushedSpec(req.spec(), /*layout_args=*/true);
//       !s.ok()) return done(s);
#ifndef LOOM_RUNTIME_WORKER_CHECKS_H_
#define LOOM_RUNTIME_WORKER_CHECKS_H_

#include <string>

#include "absl/status/status.h"
#include "proto/common.pb.h"

namespace loom {

// Bounds on what a pushed task may carry beyond the ids' fixed sizes.
inline constexpr size_t kMaxFunctionName = 64 * 1024;
inline constexpr int kMaxReturns = 1000;
inline constexpr int kMaxConcurrency = 1000;

// Every field of a pushed task a worker reads: ids of the right sizes,
// counts in range, and ref arguments that name the store holding them.
// `layout_args`: inline arguments must be objects in the common layout (a
// language runtime's worker, which hands them to its executor as such),
// unless the caller is C++ (msgpack_values: bare msgpack).
absl::Status ValidatePushedSpec(const rpc::TaskSpec& spec, bool layout_args);

// A borrower's address: host:port, as core workers give theirs.
absl::Status ValidateBorrower(const std::string& borrower);

}  // namespace loom

#endif  // LOOM_RUNTIME_WORKER_CHECKS_H_
