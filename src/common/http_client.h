// src/common/http_client.h
//
// One HTTP/1.1 request and its whole response, on civetweb's client (the
// library the head's HTTP API serves on), for `loom job`.
//
//   auto r = HttpCall({.host = "10.0.0.1", .port = 8265, .method = "GET",
//                      .path = "/api/jobs/", .token = token});
//   if (r.ok() && r->status == 200) Use(r->body);
#ifndef LOOM_COMMON_HTTP_CLIENT_H_
#define LOOM_COMMON_HTTP_CLIENT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "src/common/http_server.h"

namespace loom {

struct HttpCallOptions {
  std::string host;
  int port = 0;
  std::string method = "GET";
  std::string path = "/";
  std::string body;
  std::string content_type = "application/json";
  std::string token;  // sent as "Authorization: Bearer" when not empty
  int timeout_ms = 60000;
  // More request headers (Cookie...), as sent.
  std::vector<std::pair<std::string, std::string>> headers;
};

// Unavailable when the server cannot be reached or does not answer.
absl::StatusOr<HttpResponse> HttpCall(const HttpCallOptions& options);

// "http://host:port" (or "host:port") split; InvalidArgument otherwise.
absl::Status ParseHttpAddress(const std::string& address, std::string* host,
                              int* port);

}  // namespace loom

#endif  // LOOM_COMMON_HTTP_CLIENT_H_
