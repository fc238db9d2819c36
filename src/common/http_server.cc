#include "src/common/http_server.h"

#include <civetweb.h>

#include <cstdio>
#include <cstring>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "src/common/http_tls.h"
#include "src/common/tls.h"

namespace loom {
namespace {

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 303:
      return "See Other";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

// Constant time in the token's length: the comparison does not tell how
// much of a guess was right.
bool SameToken(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

// The status line and headers, ending with `framing` (the body's length or
// encoding, and the connection's fate) and the blank line.
std::string Head(const HttpResponse& response, absl::string_view framing) {
  std::string head =
      absl::StrCat("HTTP/1.1 ", response.status, " ", Reason(response.status),
                   "\r\nContent-Type: ", response.content_type, "\r\n");
  for (const auto& [name, value] : response.headers) {
    absl::StrAppend(&head, name, ": ", value, "\r\n");
  }
  absl::StrAppend(&head, framing, "\r\n\r\n");
  return head;
}

}  // namespace

const std::string* HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, absl::string_view(name.data(), name.size())))
      return &v;
  }
  return nullptr;
}

std::string UrlParam(std::string_view encoded, std::string_view name) {
  std::string key(name);
  std::vector<char> out(encoded.size() + 1);
  int n = mg_get_var(encoded.data(), encoded.size(), key.c_str(), out.data(),
                     out.size());
  return n > 0 ? std::string(out.data(), n) : "";
}

HttpServer::HttpServer(Options options) : options_(options) {}

HttpServer::~HttpServer() {
  // Streams see it and end; mg_stop waits for every handler.
  stopping_ = true;
  if (ctx_) mg_stop(ctx_);
}

void HttpServer::Route(std::string prefix, int64_t max_body_bytes,
                       Handler handler, Access access) {
  routes_.push_back(
      {std::move(prefix), max_body_bytes, std::move(handler), access});
}

HttpResponse HttpServer::Error(int status, const std::string& message) {
  return {status, absl::StrCat(R"({"error": )", JsonString(message), "}")};
}

absl::StatusOr<int> HttpServer::Start(const std::string& host, int port) {
  // With $LOOM_TLS_DIR: HTTPS only (the port's "s"), TLS 1.2 or later; a
  // client certificate is asked for and, when given, must be the CA's
  // (people's browsers and curl have none: their token says who they are).
  const auto& tls = ProcessTls();
  if (!tls.ok()) return tls.status();
  const TlsPaths& pem = ProcessTlsPaths();
  bool https = tls->has_value();
  if (https && (pem.cert_and_key.empty() || pem.ca.empty())) {
    return absl::InternalError("HTTPS: cannot hold the certificate in memory");
  }
  std::string listen = absl::StrCat(host, ":", port, https ? "s" : "");
  std::string threads = std::to_string(options_.threads);
  std::string timeout = std::to_string(options_.request_timeout_ms);
  std::string idle = std::to_string(options_.keep_alive_timeout_ms);
  std::vector<const char*> opts = {
      "listening_ports",       listen.c_str(),
      "num_threads",           threads.c_str(),
      "request_timeout_ms",    timeout.c_str(),
      "enable_keep_alive",     options_.keep_alive ? "yes" : "no",
      "keep_alive_timeout_ms", idle.c_str()};
  if (https) {
    if (auto s = PrepareCivetwebTls(); !s.ok()) return s;
    for (const char* o : {"ssl_certificate", pem.cert_and_key.c_str(),
                          "ssl_ca_file", pem.ca.c_str(), "ssl_verify_peer",
                          "optional", "ssl_protocol_version", "4"}) {
      opts.push_back(o);
    }
  }
  opts.push_back(nullptr);
  mg_callbacks callbacks{};
  // civetweb prints why it could not start to stderr through this.
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };
  ctx_ = mg_start(&callbacks, this, opts.data());
  if (ctx_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve HTTP on ", listen, " (in use?)"));
  }
  mg_set_request_handler(ctx_, "/", &HttpServer::Serve, this);
  for (auto& [prefix, entry] : streams_) {
    mg_set_websocket_handler(
        ctx_, prefix.c_str(),
        [](const mg_connection* conn, void* data) -> int {
          auto* e = static_cast<StreamEntry*>(data);
          return e->server->Identify(conn).has_value() ? 0 : 1;  // 0: accept
        },
        [](mg_connection* conn, void* data) {
          auto* e = static_cast<StreamEntry*>(data);
          const mg_request_info* info = mg_get_request_info(conn);
          HttpRequest req{"GET", info->local_uri ? info->local_uri : "",
                          info->query_string ? info->query_string : "", ""};
          e->handler(req, [conn, e](const std::string& text) {
            if (e->server->stopping_) return false;
            return text.empty() ||
                   mg_websocket_write(conn, MG_WEBSOCKET_OPCODE_TEXT,
                                      text.data(), text.size()) > 0;
          });
          const char normal[] = {0x03, static_cast<char>(0xe8)};  // 1000
          mg_websocket_write(conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, normal,
                             sizeof(normal));
        },
        [](mg_connection*, int, char*, size_t, void*) -> int { return 1; },
        [](const mg_connection*, void*) {}, entry.get());
  }
  mg_server_port ports[4];
  int n = mg_get_server_ports(ctx_, 4, ports);
  if (n <= 0) return absl::UnavailableError("HTTP: no port bound");
  return ports[0].port;
}

int HttpServer::Serve(mg_connection* conn, void* self) {
  return static_cast<HttpServer*>(self)->Serve(conn);
}

void HttpServer::Stream(std::string prefix, StreamHandler handler) {
  streams_.emplace_back(
      std::move(prefix),
      std::make_unique<StreamEntry>(StreamEntry{this, std::move(handler)}));
}

std::optional<Identity> HttpServer::IdentifyToken(
    std::string_view token) const {
  absl::string_view given(token.data(), token.size());
  if (given.empty()) return std::nullopt;
  if (options_.token && SameToken(given, *options_.token)) {
    return Identity{kClusterName, Role::kAdmin, ""};
  }
  // The serve ingress's key: calls a deployment, reads nothing else.
  if (options_.api_key && SameToken(given, *options_.api_key)) {
    return Identity{"api-key", Role::kSubmitter, "api-key"};
  }
  if (options_.identify) return options_.identify(token);
  return std::nullopt;
}

std::optional<Identity> HttpServer::Identify(const mg_connection* conn,
                                             bool* by_cookie) const {
  if (by_cookie) *by_cookie = false;
  if (options_.token == nullptr && options_.api_key == nullptr &&
      !options_.identify) {
    return Identity{kClusterName, Role::kAdmin, ""};
  }
  const char* auth = mg_get_header(conn, "Authorization");
  if (auth == nullptr) auth = mg_get_header(conn, "X-Ray-Authorization");
  absl::string_view given = auth ? auth : "";
  if (absl::ConsumePrefix(&given, "Bearer ")) {
    auto who = IdentifyToken(std::string_view(given.data(), given.size()));
    if (who.has_value()) return who;
  }
  const char* key = mg_get_header(conn, "X-API-Key");
  if (key && options_.api_key && SameToken(key, *options_.api_key)) {
    return IdentifyToken(key);
  }
  const char* cookies = mg_get_header(conn, "Cookie");
  char value[512];
  if (cookies != nullptr &&
      mg_get_cookie(cookies, kTokenCookie, value, sizeof(value)) > 0) {
    auto who = IdentifyToken(value);
    if (who.has_value() && by_cookie) *by_cookie = true;
    return who;
  }
  return std::nullopt;
}

int HttpServer::Serve(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  HttpRequest req;
  req.method = info->request_method ? info->request_method : "";
  req.path = info->local_uri ? info->local_uri : "";
  req.query = info->query_string ? info->query_string : "";
  req.headers.reserve(info->num_headers);
  for (int i = 0; i < info->num_headers; ++i) {
    req.headers.emplace_back(info->http_headers[i].name,
                             info->http_headers[i].value);
  }
  bool by_cookie = false;
  std::optional<Identity> who = Identify(conn, &by_cookie);
  const RouteEntry* route = nullptr;
  for (const RouteEntry& r : routes_) {
    if (absl::StartsWith(req.path, r.prefix) &&
        (route == nullptr || r.prefix.size() > route->prefix.size())) {
      route = &r;
    }
  }
  if (!who.has_value() && route != nullptr && route->access.open) {
    who = Identity{"anonymous", Role::kViewer, ""};
    req.anonymous = true;
  }
  if (!who.has_value()) {
    Write(conn,
          Error(401,
                "this cluster needs its token: send \"Authorization: "
                "Bearer <token>\" (the head's <session>/auth_token; "
                "Ray's clients send it with RAY_AUTH_MODE=token and "
                "RAY_AUTH_TOKEN)"),
          /*close=*/true);
    return 401;
  }
  if (route == nullptr) {
    Write(conn, Error(404, absl::StrCat("no such path: ", req.path)),
          /*close=*/true);
    return 404;
  }
  req.caller = *std::move(who);
  req.peer = absl::StrCat(info->remote_addr, ":", info->remote_port);
  bool read = req.method == "GET" || req.method == "HEAD";
  if (by_cookie && !read && !route->access.open &&
      req.Header("X-Loom-Dashboard") == nullptr) {
    // A form on another site could post with the browser's cookie; it
    // cannot add a header.
    Write(conn,
          Error(403,
                "a change asked with the dashboard's cookie needs the "
                "header X-Loom-Dashboard (or send the token as "
                "\"Authorization: Bearer <token>\")"),
          /*close=*/true);
    return 403;
  }
  Role need = read ? route->access.read : route->access.write;
  if (req.caller.role < need && !route->access.open) {
    std::string why = DeniedMessage(
        req.caller, absl::StrCat(req.method, " ", req.path), need);
    if (options_.on_denied) options_.on_denied(req, why);
    Write(conn, Error(403, why), /*close=*/true);
    return 403;
  }
  if (info->content_length > route->max_body_bytes) {
    Write(conn,
          Error(413, absl::StrCat("the request body (", info->content_length,
                                  " bytes) is over this route's limit of ",
                                  route->max_body_bytes, " bytes")),
          /*close=*/true);
    return 413;
  }
  char buf[64 * 1024];
  while (true) {
    int n = mg_read(conn, buf, sizeof(buf));
    if (n <= 0) break;
    req.body.append(buf, n);
    if (static_cast<int64_t>(req.body.size()) > route->max_body_bytes) {
      Write(conn,
            Error(413, absl::StrCat("the request body is over this "
                                    "route's limit of ",
                                    route->max_body_bytes, " bytes")),
            /*close=*/true);
      return 413;
    }
  }
  HttpResponse response = route->handler(req);
  Write(conn, response);
  return response.status;
}

void HttpServer::WriteStream(mg_connection* conn,
                             const HttpResponse& response) const {
  std::string head =
      Head(response, "Transfer-Encoding: chunked\r\nConnection: close");
  if (mg_write(conn, head.data(), head.size()) <= 0) return;
  std::string chunk;
  while (!stopping_) {
    chunk.clear();
    int more = response.stream(&chunk);
    if (more < 0) return;  // no last chunk: the client sees it cut short
    if (more == 0) break;
    if (chunk.empty()) continue;  // an empty chunk would end the body
    std::string framed = absl::StrCat(absl::Hex(chunk.size()), "\r\n");
    framed += chunk;
    framed += "\r\n";
    if (mg_write(conn, framed.data(), framed.size()) <= 0) return;
  }
  mg_write(conn, "0\r\n\r\n", 5);
}

void HttpServer::Write(mg_connection* conn, const HttpResponse& response,
                       bool close) const {
  if (response.stream) return WriteStream(conn, response);
  std::string head =
      Head(response, absl::StrCat("Content-Length: ", response.body.size(),
                                  close || !options_.keep_alive
                                      ? "\r\nConnection: close"
                                      : "\r\nConnection: keep-alive"));
  // One write for a small response: the header and body in one packet.
  if (response.body.size() <= 16 * 1024) {
    head += response.body;
    mg_write(conn, head.data(), head.size());
  } else {
    mg_write(conn, head.data(), head.size());
    mg_write(conn, response.body.data(), response.body.size());
  }
}

}  // namespace loom
