// src/common/version.h
//
// What a node must share with its head to join it: the wire protocol's
// version and the build. A node whose protocol or build differs from the
// head's is refused at registration, naming both, instead of joining and
// misreading messages later.
//
//   rpc::RegisterNodeRequest req;
//   req.set_protocol_version(kProtocolVersion);
//   req.set_build_version(BuildVersion());
//   ...
//   // the head:
//   if (auto s = CheckNodeVersion(node, ThisVersion()); !s.ok()) return s;
#ifndef LOOM_COMMON_VERSION_H_
#define LOOM_COMMON_VERSION_H_

#include <string>

#include "absl/status/status.h"

namespace loom {

// Bump when a change to proto/ makes old and new processes misunderstand
// each other (a field's meaning or type changes, a required one appears).
inline constexpr int kProtocolVersion = 1;

// The project version and, in a git checkout, its commit:
// "0.1.0+g754791f9f826" (".dirty" appended for uncommitted changes).
// Generated at build time by cmake/build_version.cmake.
const char* BuildVersion();

struct Version {
  int protocol = 0;
  std::string build;
};
// This process's: kProtocolVersion and BuildVersion().
Version ThisVersion();
// "protocol 1 (build 0.1.0+g754791f9f826)".
std::string ToString(const Version& version);

// FAILED_PRECONDITION when `node` differs from `head` in protocol or build:
// "node runs protocol X (build Y), head runs protocol X' (build Y')".
absl::Status CheckNodeVersion(const Version& node, const Version& head);
// Whether `status` is CheckNodeVersion's refusal (as a node receives it).
bool IsVersionMismatch(const absl::Status& status);

}  // namespace loom

#endif  // LOOM_COMMON_VERSION_H_
