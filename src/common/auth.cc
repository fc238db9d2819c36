#include "src/common/auth.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "src/common/net.h"
#include "src/common/session.h"

namespace loom {

namespace {

constexpr size_t kMinTokenLength = 16;

absl::StatusOr<std::string> CheckToken(std::string token,
                                       const std::string& from) {
  token = std::string(absl::StripAsciiWhitespace(token));
  if (token.size() < kMinTokenLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("the cluster token in ", from, " is shorter than ",
                     kMinTokenLength, " characters"));
  }
  for (char c : token) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.') {
      return absl::InvalidArgumentError(
          absl::StrCat("the cluster token in ", from,
                       " may hold only letters, digits, '-', '_' and '.'"));
    }
  }
  return token;
}

// Whether two head addresses name a head in common (either may be a list:
// an active head and its standby).
bool SameHead(const std::string& a, const std::string& b) {
  for (const std::string& x : HeadAddresses(a)) {
    for (const std::string& y : HeadAddresses(b)) {
      if (x == y) return true;
    }
  }
  return false;
}

}  // namespace

std::string NewClusterToken() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) std::abort();  // no kernel randomness: nothing safe to do
    got += static_cast<size_t>(n);
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<char*>(bytes), sizeof(bytes)));
}

absl::Status WriteTokenFile(const std::string& path, const std::string& token) {
  std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  }
  fchmod(fd, 0600);  // whatever the umask
  std::string data = token + "\n";
  bool ok =
      write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return absl::InternalError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  auto data = ReadFileToString(path);
  if (!data.ok()) return data.status();
  return CheckToken(*data, path);
}

absl::StatusOr<std::string> TokenFromEnv() {
  const char* env = std::getenv(kAuthTokenEnv);
  if (env == nullptr || *env == '\0') {
    return absl::NotFoundError(absl::StrCat("$", kAuthTokenEnv, " is unset"));
  }
  return CheckToken(env, absl::StrCat("$", kAuthTokenEnv));
}

std::vector<std::string> FindSessionTokens(const std::string& root,
                                           const std::string& gcs_address) {
  DIR* dir = opendir(root.c_str());
  if (dir == nullptr) return {};
  // Session names start with their start time, so the greatest is newest.
  std::vector<std::pair<std::string, std::string>> found;  // name, token
  while (dirent* e = readdir(dir)) {
    std::string name = e->d_name;
    if (!absl::StartsWith(name, "session_") || name == "session_latest") {
      continue;
    }
    std::string path = absl::StrCat(root, "/", name);
    auto address = ReadFileToString(path + "/address");
    if (!address.ok() || !SameHead(*address, gcs_address)) continue;
    auto token = ReadTokenFile(absl::StrCat(path, "/", kAuthTokenFile));
    if (token.ok()) found.emplace_back(std::move(name), std::move(*token));
  }
  closedir(dir);
  std::sort(found.begin(), found.end(), std::greater<>());
  std::vector<std::string> tokens;
  for (auto& [name, token] : found) {
    if (std::find(tokens.begin(), tokens.end(), token) == tokens.end()) {
      tokens.push_back(std::move(token));
    }
  }
  return tokens;
}

absl::StatusOr<std::string> FindSessionToken(const std::string& root,
                                             const std::string& gcs_address) {
  std::vector<std::string> tokens = FindSessionTokens(root, gcs_address);
  if (tokens.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "no session under ", root, " holds a token for ", gcs_address));
  }
  return std::move(tokens.front());
}

absl::StatusOr<std::string> DaemonToken(const std::string& file,
                                        const std::string& session_dir,
                                        bool no_auth) {
  if (no_auth) {
    unsetenv(kAuthTokenEnv);
    return std::string();
  }
  absl::StatusOr<std::string> token = absl::NotFoundError("no cluster token");
  if (!file.empty()) {
    token = ReadTokenFile(file);
  } else if (std::getenv(kAuthTokenEnv) != nullptr) {
    token = TokenFromEnv();
  } else if (!session_dir.empty()) {
    token = ReadTokenFile(absl::StrCat(session_dir, "/", kAuthTokenFile));
  }
  if (absl::IsNotFound(token.status())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no cluster token: pass --auth-token-file, set $", kAuthTokenEnv,
        ", or start a loopback-only cluster with --no-auth (",
        token.status().message(), ")"));
  }
  if (!token.ok()) return token.status();
  setenv(kAuthTokenEnv, token->c_str(), 1);
  return token;
}

absl::StatusOr<std::string> DaemonAuth(const std::string& file,
                                       const std::string& session_dir,
                                       bool no_auth, const std::string& host,
                                       const std::string& bind) {
  auto token = DaemonToken(file, session_dir, no_auth);
  if (!token.ok()) return token;
  if (auto s = CheckListenAddresses(host, bind, no_auth); !s.ok()) return s;
  return token;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  // Length is not secret (every token has the same); contents are.
  if (a.size() != b.size()) return false;
  volatile unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = diff | static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

}  // namespace loom
