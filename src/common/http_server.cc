#include "src/common/http_server.h"

#include <civetweb.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace loom {
namespace {

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
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

}  // namespace

HttpServer::HttpServer(Options options) : options_(options) {}

HttpServer::~HttpServer() {
  // Streams see it and end; mg_stop waits for every handler.
  stopping_ = true;
  if (ctx_) mg_stop(ctx_);
}

void HttpServer::Route(std::string prefix, int64_t max_body_bytes,
                       Handler handler) {
  routes_.push_back({std::move(prefix), max_body_bytes, std::move(handler)});
}

HttpResponse HttpServer::Error(int status, const std::string& message) {
  return {status, absl::StrCat(R"({"error": )", JsonString(message), "}")};
}

absl::StatusOr<int> HttpServer::Start(const std::string& host, int port) {
  std::string listen = absl::StrCat(host, ":", port);
  std::string threads = std::to_string(options_.threads);
  std::string timeout = std::to_string(options_.request_timeout_ms);
  const char* opts[] = {
      "listening_ports",    listen.c_str(),  "num_threads", threads.c_str(),
      "request_timeout_ms", timeout.c_str(), nullptr};
  mg_callbacks callbacks{};
  // civetweb prints why it could not start to stderr through this.
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };
  ctx_ = mg_start(&callbacks, this, opts);
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
          return e->server->Authorized(conn) ? 0 : 1;  // 0: accept
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

bool HttpServer::Authorized(const mg_connection* conn) const {
  if (options_.token == nullptr) return true;
  const char* auth = mg_get_header(conn, "Authorization");
  if (auth == nullptr) auth = mg_get_header(conn, "X-Ray-Authorization");
  absl::string_view given = auth ? auth : "";
  return absl::ConsumePrefix(&given, "Bearer ") &&
         SameToken(given, *options_.token);
}

int HttpServer::Serve(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  HttpRequest req;
  req.method = info->request_method ? info->request_method : "";
  req.path = info->local_uri ? info->local_uri : "";
  req.query = info->query_string ? info->query_string : "";
  if (!Authorized(conn)) {
    Write(conn, Error(401,
                      "this cluster needs its token: send \"Authorization: "
                      "Bearer <token>\" (the head's <session>/auth_token; "
                      "Ray's clients send it with RAY_AUTH_MODE=token and "
                      "RAY_AUTH_TOKEN)"));
    return 401;
  }
  const RouteEntry* route = nullptr;
  for (const RouteEntry& r : routes_) {
    if (absl::StartsWith(req.path, r.prefix) &&
        (route == nullptr || r.prefix.size() > route->prefix.size())) {
      route = &r;
    }
  }
  if (route == nullptr) {
    Write(conn, Error(404, absl::StrCat("no such path: ", req.path)));
    return 404;
  }
  if (info->content_length > route->max_body_bytes) {
    Write(conn,
          Error(413, absl::StrCat("the request body (", info->content_length,
                                  " bytes) is over this route's limit of ",
                                  route->max_body_bytes, " bytes")));
    return 413;
  }
  char buf[64 * 1024];
  while (true) {
    int n = mg_read(conn, buf, sizeof(buf));
    if (n <= 0) break;
    req.body.append(buf, n);
    if (static_cast<int64_t>(req.body.size()) > route->max_body_bytes) {
      Write(conn, Error(413, absl::StrCat("the request body is over this "
                                          "route's limit of ",
                                          route->max_body_bytes, " bytes")));
      return 413;
    }
  }
  HttpResponse response = route->handler(req);
  Write(conn, response);
  return response.status;
}

void HttpServer::Write(mg_connection* conn, const HttpResponse& response) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Connection: close\r\n\r\n",
            response.status, Reason(response.status),
            response.content_type.c_str(), response.body.size());
  mg_write(conn, response.body.data(), response.body.size());
}

}  // namespace loom
