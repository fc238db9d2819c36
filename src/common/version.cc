#include "src/common/version.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace loom {
namespace {

constexpr char kMismatchPrefix[] = "node runs protocol ";

}  // namespace

Version ThisVersion() { return Version{kProtocolVersion, BuildVersion()}; }

std::string ToString(const Version& version) {
  return absl::StrCat("protocol ", version.protocol, " (build ",
                      version.build.empty() ? "unknown" : version.build, ")");
}

absl::Status CheckNodeVersion(const Version& node, const Version& head) {
  if (node.protocol == head.protocol && node.build == head.build) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("node runs ", ToString(node), ", head runs ", ToString(head),
                   ": start the node from the head's build"));
}

bool IsVersionMismatch(const absl::Status& status) {
  return status.code() == absl::StatusCode::kFailedPrecondition &&
         absl::StartsWith(status.message(), kMismatchPrefix);
}

}  // namespace loom
