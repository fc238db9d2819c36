// src/common/http_server.h
//
// HttpServer: a small HTTP/1.1 server on civetweb (Debian's libcivetweb,
// the library prometheus-cpp serves /metrics with) for the head's REST API.
// Routes are URI prefixes; a handler gets the request whole (its body read
// up to the route's limit) and returns the response. With a token, every
// request must carry "Authorization: Bearer <token>" or gets 401; with
// people's tokens (Options::identify), a route's reads and writes need the
// roles it names, or get 403.
//
//   HttpServer http({.token = &token});
//   http.Route("/api/version", 1 << 20, [](const HttpRequest& r) {
//     return HttpResponse{200, R"({"version": "4"})"};
//   });
//   absl::StatusOr<int> port = http.Start("127.0.0.1", 8265);
#ifndef LOOM_COMMON_HTTP_SERVER_H_
#define LOOM_COMMON_HTTP_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "src/common/json.h"
#include "src/common/roles.h"

struct mg_context;
struct mg_connection;

namespace loom {

struct HttpRequest {
  std::string method;  // GET, POST, PUT, DELETE...
  std::string path;    // decoded, without the query
  std::string query;   // after '?', as sent
  std::string body;
  // As sent, in order (names as the client spelled them).
  std::vector<std::pair<std::string, std::string>> headers;
  // The first header of that name (any case); null when absent.
  const std::string* Header(std::string_view name) const;
  Identity caller;   // who its token says it is (roles.h)
  std::string peer;  // the client's IP:port
  // On an open route only: no token it knows came with it (caller is then
  // a viewer named "anonymous").
  bool anonymous = false;
};

// The value of `name` in a URL-encoded query or form body ("a=1&b=x%20y"),
// decoded; "" when absent.
std::string UrlParam(std::string_view encoded, std::string_view name);

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  // Extra headers (Retry-After...); not Content-Type or Content-Length.
  std::vector<std::pair<std::string, std::string>> headers;
  // Set: the body is streamed (chunked, then the connection closes) from
  // what this returns: 1 with a chunk, 0 at the end, -1 when it failed (the
  // connection closes without the last chunk, so the client sees the body
  // is incomplete).
  std::function<int(std::string* chunk)> stream;
};

// The least role for a route's reads (GET, HEAD) and its other methods; a
// caller below gets 403 naming its role.
struct RouteAccess {
  Role read = Role::kViewer;
  Role write = Role::kSubmitter;
  // Served without a token too (req.anonymous), whatever the method and
  // role: the dashboard's login form and its static files, whose handlers
  // decide what a stranger sees.
  bool open = false;
};

// Thread-safe: handlers run on the server's threads, several at once.
class HttpServer {
 public:
  struct Options {
    const std::string* token = nullptr;  // null: no token needed
    // Else, or also: who a bearer token is (people's tokens, roles.h);
    // nullopt for one it does not know.
    std::function<std::optional<Identity>(std::string_view token)> identify;
    // Called for each request refused for its role (the head audits them).
    std::function<void(const HttpRequest&, const std::string& why)> on_denied;
    // Also accepted, as a bearer token or an "X-API-Key" header (the serve
    // ingress's key for clients outside the cluster); null: none.
    const std::string* api_key = nullptr;
    // civetweb serves a connection on one thread while it is open, so a
    // keep-alive server needs a thread per client it serves at once.
    int threads = 8;
    int request_timeout_ms = 30000;
    bool keep_alive = false;           // HTTP/1.1 connections stay open
    int keep_alive_timeout_ms = 5000;  // then an idle one is closed
  };
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  // Writes one text frame; false once the client is gone or the server
  // stops. An empty string writes nothing: it only asks.
  using Send = std::function<bool(const std::string&)>;
  using StreamHandler = std::function<void(const HttpRequest&, const Send&)>;

  explicit HttpServer(Options options);
  ~HttpServer();  // stops serving; waits for handlers in progress

  // The cookie a browser's token travels in (HttpOnly, SameSite=Strict).
  static constexpr char kTokenCookie[] = "loom_token";

  using Access = RouteAccess;
  // Before Start. A body longer than max_body_bytes gets 413 unread.
  void Route(std::string prefix, int64_t max_body_bytes, Handler handler,
             Access access = {});
  // Before Start: a WebSocket route. The handler sends text frames while it
  // runs; when it returns the socket closes normally (1000).
  void Stream(std::string prefix, StreamHandler handler);
  // Listens on host:port (0: any free port); returns the bound port.
  // Unavailable when it cannot (the port is taken).
  absl::StatusOr<int> Start(const std::string& host, int port);

  // A JSON error body: {"error": message}.
  static HttpResponse Error(int status, const std::string& message);

  // Who this token is (the cluster's, the API key, or a person's); nullopt
  // when none of those. Thread-safe.
  std::optional<Identity> IdentifyToken(std::string_view token) const;

 private:
  struct RouteEntry {
    std::string prefix;
    int64_t max_body_bytes;
    Handler handler;
    Access access;
  };
  struct StreamEntry {
    HttpServer* server;
    StreamHandler handler;
  };
  static int Serve(mg_connection* conn, void* self);
  int Serve(mg_connection* conn);
  // Who the request's token says it is; nullopt without a token it knows.
  // *by_cookie: the token came only in kTokenCookie.
  std::optional<Identity> Identify(const mg_connection* conn,
                                   bool* by_cookie = nullptr) const;
  void Write(mg_connection* conn, const HttpResponse& response,
             bool close = false) const;
  void WriteStream(mg_connection* conn, const HttpResponse& response) const;

  Options options_;
  std::vector<RouteEntry> routes_;
  std::vector<std::pair<std::string, std::unique_ptr<StreamEntry>>> streams_;
  mg_context* ctx_ = nullptr;
  std::atomic<bool> stopping_{false};
};

}  // namespace loom

#endif  // LOOM_COMMON_HTTP_SERVER_H_
