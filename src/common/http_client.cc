#include "src/common/http_client.h"

#include <civetweb.h>

#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "src/common/http_tls.h"
#include "src/common/tls.h"

namespace loom {

absl::Status ParseHttpAddress(const std::string& address, std::string* host,
                              int* port) {
  absl::string_view a = address;
  if (!absl::ConsumePrefix(&a, "http://")) absl::ConsumePrefix(&a, "https://");
  absl::ConsumeSuffix(&a, "/");
  size_t colon = a.rfind(':');
  if (colon == absl::string_view::npos ||
      !absl::SimpleAtoi(a.substr(colon + 1), port) || *port <= 0 ||
      *port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the job API address must be http://HOST:PORT (or https://), not '",
        address, "'"));
  }
  *host = std::string(a.substr(0, colon));
  return absl::OkStatus();
}

absl::StatusOr<HttpResponse> HttpCall(const HttpCallOptions& o) {
  // With $LOOM_TLS_DIR: HTTPS, checking the server's certificate against
  // the cluster's CA and presenting this process's.
  const auto& tls = ProcessTls();
  if (!tls.ok()) return tls.status();
  bool https = tls->has_value();
  if (https) {
    if (auto s = PrepareCivetwebTls(); !s.ok()) return s;
  } else {
    static std::once_flag init;
    std::call_once(init, [] { mg_init_library(0); });
  }
  const char* scheme = https ? "https" : "http";
  char error[256] = {0};
  mg_connection* conn = nullptr;
  if (https) {
    const TlsPaths& pem = ProcessTlsPaths();
    mg_client_options client{};
    client.host = o.host.c_str();
    client.port = o.port;
    client.client_cert = pem.cert_and_key.c_str();
    client.server_cert = pem.ca.c_str();
    client.host_name = o.host.c_str();
    conn = mg_connect_client_secure(&client, error, sizeof(error));
  } else {
    conn = mg_connect_client(o.host.c_str(), o.port, 0, error, sizeof(error));
  }
  if (conn == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot reach ", scheme, "://",
                                               o.host, ":", o.port, ": ", error,
                                               https ? "" : TlsHint(error)));
  }
  std::string auth =
      o.token.empty() ? ""
                      : absl::StrCat("Authorization: Bearer ", o.token, "\r\n");
  for (const auto& [name, value] : o.headers) {
    absl::StrAppend(&auth, name, ": ", value, "\r\n");
  }
  mg_printf(conn,
            "%s %s HTTP/1.1\r\nHost: %s:%d\r\n%sContent-Type: %s\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
            o.method.c_str(), o.path.c_str(), o.host.c_str(), o.port,
            auth.c_str(), o.content_type.c_str(), o.body.size());
  if (!o.body.empty()) mg_write(conn, o.body.data(), o.body.size());
  if (mg_get_response(conn, error, sizeof(error), o.timeout_ms) < 0) {
    mg_close_connection(conn);
    return absl::UnavailableError(absl::StrCat(
        "no answer from ", scheme, "://", o.host, ":", o.port, ": ", error));
  }
  HttpResponse response;
  response.status = mg_get_response_info(conn)->status_code;
  char buf[64 * 1024];
  int n;
  while ((n = mg_read(conn, buf, sizeof(buf))) > 0)
    response.body.append(buf, n);
  mg_close_connection(conn);
  return response;
}

}  // namespace loom
