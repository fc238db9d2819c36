// src/common/civetweb_tls_shim.cc
//
// Debian's civetweb (1.15) loads OpenSSL with dlopen("libssl.so") and looks
// up SSL_get_peer_certificate, which OpenSSL 3 no longer exports (it became
// a macro for SSL_get1_peer_certificate): the lookup gives NULL, and every
// HTTPS connection crashes calling it. This library, named libssl.so
// (its SONAME) and depending on the real libssl.so.3, supplies the one
// missing function; loaded before civetweb asks for "libssl.so", it is
// what civetweb gets, and every other lookup goes through to OpenSSL.
// Built into loom_common as bytes and loaded from a memfd (http_tls.cc).
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate
extern "C" X509* SSL_get_peer_certificate(const SSL* ssl) {
  return SSL_get1_peer_certificate(ssl);
}
