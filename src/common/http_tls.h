// src/common/http_tls.h
//
// HTTPS for civetweb (the head's HTTP API, the serve ingress, `loom job`):
// loads OpenSSL for civetweb once per process, with the shim that makes
// Debian's civetweb work with OpenSSL 3 (civetweb_tls_shim.cc). Call before
// the first HTTPS server or client.
//
//   if (auto s = PrepareCivetwebTls(); !s.ok()) return s;
#ifndef LOOM_COMMON_HTTP_TLS_H_
#define LOOM_COMMON_HTTP_TLS_H_

#include "absl/status/status.h"

namespace loom {

// Thread-safe; the first call does the work and every call returns its
// result: Internal when OpenSSL cannot be loaded.
absl::Status PrepareCivetwebTls();

}  // namespace loom

#endif  // LOOM_COMMON_HTTP_TLS_H_
