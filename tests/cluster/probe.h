// tests/cluster/probe.h
//
// A prober that speaks every method of a Loom service, as an outsider would:
// a plain channel (no cluster token unless given one) and an empty request
// per method. Used by the auth tests and by loom-probe (the multi-host
// suite runs it from another network host).
//
//   for (auto& m : ServiceMethods("loom.rpc.Gcs"))
//     EXPECT_EQ(ProbeCall(addr, m, "").error_code(), UNAUTHENTICATED);
#ifndef LOOM_TESTS_CLUSTER_PROBE_H_
#define LOOM_TESTS_CLUSTER_PROBE_H_

#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

namespace loom::test {

// "/loom.rpc.Gcs/RegisterNode", ... for every method of `service` (a full
// proto name); empty for an unknown service.
std::vector<std::string> ServiceMethods(const std::string& service);

// Calls `method` at `address` with an empty request on a channel that adds
// nothing, carrying `token` as the cluster token when it is not empty.
grpc::Status ProbeCall(const std::string& address, const std::string& method,
                       const std::string& token);

}  // namespace loom::test

#endif  // LOOM_TESTS_CLUSTER_PROBE_H_
