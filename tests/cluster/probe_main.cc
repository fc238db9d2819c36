// loom-probe: calls every method of a Loom service at an address, as an
// outsider: without the cluster token, or with the one given.
//   loom-probe HOST:PORT loom.rpc.Gcs [TOKEN]
// Prints "METHOD CODE" per method; exits 0 when every call was refused
// UNAUTHENTICATED, 1 when any was not, 2 on bad arguments.
#include <cstdio>

#include "absl/status/status.h"
#include "tests/cluster/probe.h"

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: %s HOST:PORT SERVICE [TOKEN]\n", argv[0]);
    return 2;
  }
  auto methods = loom::test::ServiceMethods(argv[2]);
  if (methods.empty()) {
    std::fprintf(stderr, "unknown service %s\n", argv[2]);
    return 2;
  }
  bool all_refused = true;
  for (const auto& m : methods) {
    grpc::Status s =
        loom::test::ProbeCall(argv[1], m, argc == 4 ? argv[3] : "");
    std::printf(
        "%s %s\n", m.c_str(),
        absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code()))
            .c_str());
    all_refused =
        all_refused && s.error_code() == grpc::StatusCode::UNAUTHENTICATED;
  }
  return all_refused ? 0 : 1;
}
