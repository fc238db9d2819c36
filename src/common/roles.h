// src/common/roles.h
//
// Who a call comes from, and what it may do. The cluster token (auth.h) is
// the cluster's own identity, with every right. People get tokens of their
// own (`loom token create --role viewer`), kept hashed by the head, each
// with a role:
//   viewer     reads state and logs;
//   submitter  also runs jobs and creates and kills its own jobs' tasks,
//              actors and placement groups;
//   admin      everything (tokens, the audit log, nodes, other jobs).
// Only the head knows the people's tokens. A driver started with one trades
// it at the head for a credential: its name, role and token id, signed with
// a key derived from the cluster token, so that raylets and workers check it
// without asking anyone (and the head also checks the token is not revoked).
//
//   std::string cred = MintCredential(cluster_token, {"alice", kSubmitter},
//                                     TokenId(alice_token));
//   std::optional<Identity> who = ReadCredential(cluster_token, cred);
#ifndef LOOM_COMMON_ROLES_H_
#define LOOM_COMMON_ROLES_H_

#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace loom {

// Ordered: each role has every right of the ones before it.
enum class Role { kViewer = 0, kSubmitter = 1, kAdmin = 2 };

const char* RoleName(Role role);
// "viewer", "submitter" or "admin"; InvalidArgument naming them otherwise.
absl::StatusOr<Role> ParseRole(absl::string_view name);

inline constexpr char kClusterName[] = "cluster";  // the cluster token's name
// How people's tokens start (the cluster token is bare hex): a process
// holding one trades it at the head for a credential.
inline constexpr char kPersonTokenPrefix[] = "loomtok_";

struct Identity {
  std::string name;  // a token's name; kClusterName for the cluster's own
  Role role = Role::kAdmin;
  std::string token_id;  // TokenId of a person's token; empty for the cluster
  bool cluster() const { return token_id.empty(); }
};

// People's tokens as the head holds them: by TokenId, with the whole hash.
struct Person {
  Identity who;
  std::string hash;  // HashToken
};
using PeopleTokens = absl::flat_hash_map<std::string, Person>;

// Why `who` may not call `action`, which needs `need`.
std::string DeniedMessage(const Identity& who, absl::string_view action,
                          Role need);

// Token names: 1-64 of [A-Za-z0-9_-]; InvalidArgument otherwise.
absl::Status CheckTokenName(absl::string_view name);

// SHA-256 of the token, in hex: what the head stores instead of the token.
std::string HashToken(absl::string_view token);
// The first 16 hex digits of HashToken: names a token in a credential.
std::string TokenId(absl::string_view token);

// A credential for `who` (holding the token `token_id`), signed with a key
// derived from `cluster_token`: "loomcred.v1.<name>.<role>.<id>.<mac>".
std::string MintCredential(absl::string_view cluster_token, const Identity& who,
                           absl::string_view token_id);
// The identity in a credential signed for this cluster; nullopt for
// anything else (another cluster's, altered, not a credential).
std::optional<Identity> ReadCredential(absl::string_view cluster_token,
                                       absl::string_view credential);

}  // namespace loom

#endif  // LOOM_COMMON_ROLES_H_
