// loom tls init: a cluster's CA and its nodes' certificate.
#include "src/common/tls.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "src/cli/commands.h"
#include "src/common/net.h"

namespace loom::cli {

std::string Absolute(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  char cwd[4096];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return path;
  return std::string(cwd) + "/" + path;
}

int TlsInit(const std::string& dir, std::vector<std::string> ips) {
  // This machine's address too: a one-machine cluster needs nothing more.
  std::string here = PrimaryAddress();
  if (std::find(ips.begin(), ips.end(), here) == ips.end()) {
    ips.push_back(here);
  }
  if (auto s = CreateClusterCerts(Absolute(dir), ips); !s.ok()) {
    std::fprintf(stderr, "loom: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::printf(
      "A cluster CA and the nodes' certificate are in %s (names: localhost, "
      "127.0.0.1, %s), and each node's own in %s/nodes/IP.\nCopy a node's "
      "directory (ca.pem, node.pem, node.key) to it, or the shared files to "
      "every node, and start each with --tls-dir DIR (drivers: "
      "$LOOM_TLS_DIR=DIR); keep ca.key to yourself.\n",
      Absolute(dir).c_str(), absl::StrJoin(ips, ", ").c_str(),
      Absolute(dir).c_str());
  return 0;
}

}  // namespace loom::cli
