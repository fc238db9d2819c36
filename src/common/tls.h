// src/common/tls.h
//
// TLS between Loom processes: with $LOOM_TLS_DIR set (`loom start
// --tls-dir`), every gRPC server and channel made by src/common/rpc.h uses
// mutual TLS with the files there: ca.pem (the cluster's CA), node.pem and
// node.key (this process's certificate, signed by that CA). A peer with a
// certificate from another CA, or none, is refused. `loom tls init DIR`
// makes the files (CreateClusterCerts).
//
//   const auto& tls = ProcessTls();  // read once; nullopt: plain TCP
//   if (!tls.ok()) return tls.status();
#ifndef LOOM_COMMON_TLS_H_
#define LOOM_COMMON_TLS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace loom {

inline constexpr char kTlsDirEnv[] = "LOOM_TLS_DIR";

struct TlsFiles {
  std::string dir;
  std::string ca;    // PEM
  std::string cert;  // PEM
  std::string key;   // PEM
};

// The files in `dir`; an error names the file missing or unreadable.
absl::StatusOr<TlsFiles> ReadTlsDir(const std::string& dir);
// This process's, from $LOOM_TLS_DIR, read on first use: nullopt when it is
// unset or empty. Thread-safe.
const absl::StatusOr<std::optional<TlsFiles>>& ProcessTls();

// For libraries that read PEM files by path (civetweb's HTTPS): this
// process's certificate and key together, and its CA, each in a memfd
// ("/proc/self/fd/N", open for the life of the process) so that no copy of
// the key lands on disk. Empty paths without TLS.
struct TlsPaths {
  std::string cert_and_key;
  std::string ca;
};
const TlsPaths& ProcessTlsPaths();

// What to add to an error reaching a peer that failed `message`, when it
// looks like a TLS mismatch: certificates from another CA, or one end
// without TLS. "" otherwise.
std::string TlsHint(const std::string& message);
// UNAVAILABLE: "cannot reach the head at `address`: `message`", with the
// TlsHint when there is one.
absl::Status HeadUnreachableError(const std::string& address,
                                  const std::string& message);

// OK when `files`' certificate names `ip` (a subject alternative name);
// else an error that says how to make one that does.
absl::Status CheckCertNamesIp(const TlsFiles& files, const std::string& ip);

// Writes a new CA (ca.pem, ca.key) and a certificate signed by it for the
// cluster's nodes (node.pem, node.key) into `dir` (made if missing; keys
// 0600): EC P-256, valid `days`, its subject alternative names `ips`
// plus 127.0.0.1 and localhost. And each node's own, naming only its
// address (and 127.0.0.1, localhost), in dir/nodes/IP/ with ca.pem: a
// directory to copy to that node. Refuses to overwrite an existing CA.
absl::Status CreateClusterCerts(const std::string& dir,
                                const std::vector<std::string>& ips,
                                int days = 3650);

}  // namespace loom

#endif  // LOOM_COMMON_TLS_H_
