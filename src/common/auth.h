// src/common/auth.h
//
// The cluster token: a random secret that every gRPC call between Loom
// processes carries and every server checks (see rpc.h). The head's
// launcher makes it (or takes --auth-token-file / $LOOM_AUTH_TOKEN) and
// writes it, mode 0600, to <session>/auth_token; daemons, workers, drivers
// and the CLI find it there, in $LOOM_AUTH_TOKEN, or in a file named to them.
//
//   std::string token = NewClusterToken();
//   WriteTokenFile(session_dir + "/auth_token", token);
//   auto mine = FindSessionToken(root, "10.0.0.1:6379");
#ifndef LOOM_COMMON_AUTH_H_
#define LOOM_COMMON_AUTH_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace loom {

inline constexpr char kAuthTokenEnv[] = "LOOM_AUTH_TOKEN";
inline constexpr char kAuthTokenFile[] = "auth_token";  // in a session dir

// 32 random bytes from the kernel, as 64 hex digits.
std::string NewClusterToken();

// Writes `token` to `path` readable by its owner only (0600).
absl::Status WriteTokenFile(const std::string& path, const std::string& token);
// The token in `path`, trimmed; InvalidArgument when it is empty, shorter
// than 16 characters or holds characters outside [0-9A-Za-z_-.].
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);
// $LOOM_AUTH_TOKEN, checked like a file's; NotFound when unset.
absl::StatusOr<std::string> TokenFromEnv();

// The token of the newest session under `root` that is a part of the cluster
// whose head is `gcs_address` (its `address` file says so). NotFound when
// none has one.
absl::StatusOr<std::string> FindSessionToken(const std::string& root,
                                             const std::string& gcs_address);
// The distinct tokens of every such session, newest first: a session left
// by a stopped head that had the same address may come before the live one.
std::vector<std::string> FindSessionTokens(const std::string& root,
                                           const std::string& gcs_address);

// A daemon's token: from `file` when named, else $LOOM_AUTH_TOKEN, else
// <session_dir>/auth_token (a restarted head reuses its own); empty with
// `no_auth`. Exported as $LOOM_AUTH_TOKEN (unset with no_auth) so the
// daemon's workers inherit it. FailedPrecondition when there is none.
absl::StatusOr<std::string> DaemonToken(const std::string& file,
                                        const std::string& session_dir,
                                        bool no_auth);

// A daemon's start: its token (DaemonToken), then its --host and
// --bind-address checked (CheckListenAddresses in net.h).
absl::StatusOr<std::string> DaemonAuth(const std::string& file,
                                       const std::string& session_dir,
                                       bool no_auth, const std::string& host,
                                       const std::string& bind);

// Equal without leaking where they differ through timing.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace loom

#endif  // LOOM_COMMON_AUTH_H_
