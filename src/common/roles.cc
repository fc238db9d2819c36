#include "src/common/roles.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "src/common/auth.h"

namespace loom {
namespace {

constexpr char kPrefix[] = "loomcred";
constexpr char kVersion[] = "v1";

std::string Hex(const unsigned char* bytes, size_t n) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), n));
}

std::string Hmac(absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out,
       &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

// The signing key: never the cluster token itself, so that a credential's
// MAC says nothing usable about the token. Every call a node takes with a
// credential checks its MAC: each thread keeps the key of the last token
// it derived one for instead of deriving it again.
const std::string& SigningKey(absl::string_view cluster_token) {
  thread_local std::string token, key;
  if (key.empty() || !ConstantTimeEquals(token, cluster_token)) {
    key = Hmac(cluster_token, "loom credential signing key v1");
    token = std::string(cluster_token);
  }
  return key;
}

std::string Mac(absl::string_view cluster_token,
                absl::string_view signed_part) {
  std::string mac = Hmac(SigningKey(cluster_token), signed_part);
  return Hex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size());
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kSubmitter:
      return "submitter";
    case Role::kAdmin:
      return "admin";
  }
  return "viewer";
}

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  for (Role r : {Role::kViewer, Role::kSubmitter, Role::kAdmin}) {
    if (name == RoleName(r)) return r;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "no role \"", name, "\": the roles are viewer, submitter and admin"));
}

std::string DeniedMessage(const Identity& who, absl::string_view action,
                          Role need) {
  return absl::StrCat("the token \"", who.name, "\" has the role ",
                      RoleName(who.role), ", which may not ", action,
                      " (that needs ", RoleName(need), ")");
}

absl::Status CheckTokenName(absl::string_view name) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name) {
    ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                c == '_' || c == '-');
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "token name \"", name, "\": use 1 to 64 letters, digits, '_' or '-'"));
}

std::string HashToken(absl::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(),
         digest);
  return Hex(digest, sizeof(digest));
}

std::string TokenId(absl::string_view token) {
  return HashToken(token).substr(0, 16);
}

std::string MintCredential(absl::string_view cluster_token, const Identity& who,
                           absl::string_view token_id) {
  std::string signed_part =
      absl::StrCat(kPrefix, ".", kVersion, ".", who.name, ".",
                   RoleName(who.role), ".", token_id);
  return absl::StrCat(signed_part, ".", Mac(cluster_token, signed_part));
}

std::optional<Identity> ReadCredential(absl::string_view cluster_token,
                                       absl::string_view credential) {
  if (cluster_token.empty() ||
      !absl::StartsWith(credential, absl::StrCat(kPrefix, "."))) {
    return std::nullopt;
  }
  std::vector<absl::string_view> parts = absl::StrSplit(credential, '.');
  if (parts.size() != 6 || parts[1] != kVersion) return std::nullopt;
  size_t signed_len = credential.size() - parts[5].size() - 1;
  std::string mac = Mac(cluster_token, credential.substr(0, signed_len));
  if (!ConstantTimeEquals(mac, parts[5])) return std::nullopt;
  auto role = ParseRole(parts[3]);
  if (!role.ok() || parts[4].empty()) return std::nullopt;
  return Identity{std::string(parts[2]), *role, std::string(parts[4])};
}

}  // namespace loom
