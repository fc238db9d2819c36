#include "runtime/serve/ingress.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "loom/serialization.h"
#include "runtime/serve/serve_metrics.h"

namespace loom::serve {
namespace {

// The replica method an HTTP request calls (python_bindings/loom/serve).
constexpr char kHttpMethod[] = "_loom_serve_http";
// The batch key of HTTP requests: the user's __call__.
constexpr char kHttpBatchKey[] = "__call__";
constexpr int64_t kMaxDeadlineMs = 24LL * 3600 * 1000;
constexpr size_t kMaxIdempotencyKey = 256;
// A streamed body waits this long for its next chunk, then is cut.
constexpr int kStreamItemTimeoutS = 300;

// The body of a streamed answer: its items after the first, each bytes.
std::function<int(std::string*)> StreamBody(std::shared_ptr<ReplyStream> s) {
  return [s](std::string* chunk) {
    absl::StatusOr<std::optional<std::string>> item =
        s->Next(absl::Seconds(kStreamItemTimeoutS));
    if (!item.ok()) return -1;
    if (!item->has_value()) return 0;
    try {
      msgpack::object_handle h =
          msgpack::unpack((*item)->data(), (*item)->size());
      *chunk = h.get().as<std::string>();  // bin or str
    } catch (const std::exception&) {
      return -1;
    }
    return 1;
  };
}

}  // namespace

std::string PackHttpRequest(const HttpRequest& request,
                            const std::string& prefix) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> p(b);
  p.pack_array(6);
  p.pack(request.method);
  p.pack(request.path);
  p.pack(request.query);
  p.pack_map(request.headers.size());
  for (const auto& [name, value] : request.headers) {
    p.pack(absl::AsciiStrToLower(name));
    p.pack(value);
  }
  p.pack_bin(request.body.size());
  p.pack_bin_body(request.body.data(), request.body.size());
  p.pack(prefix);
  return std::string(b.data(), b.size());
}

absl::StatusOr<HttpResponse> UnpackHttpAnswer(const std::string& bytes) {
  try {
    msgpack::object_handle h = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& o = h.get();
    // [status, content type, headers, body]; a stream's first item is the
    // same without the body.
    if (o.type != msgpack::type::ARRAY ||
        (o.via.array.size != 4 && o.via.array.size != 3)) {
      return absl::InvalidArgumentError(
          "a replica's HTTP answer is [status, content type, headers, body]");
    }
    const msgpack::object* a = o.via.array.ptr;
    HttpResponse r;
    r.status = a[0].as<int>();
    r.content_type = a[1].as<std::string>();
    auto headers = a[2].as<std::vector<std::pair<std::string, std::string>>>();
    for (auto& [name, value] : headers) {
      std::string lower = absl::AsciiStrToLower(name);
      if (lower == "content-length" || lower == "content-type" ||
          lower == "connection" || lower == "transfer-encoding") {
        continue;  // the server writes these
      }
      if (name.find_first_of("\r\n:") != std::string::npos ||
          value.find_first_of("\r\n") != std::string::npos) {
        return absl::InvalidArgumentError("a response header has CR or LF");
      }
      r.headers.emplace_back(std::move(name), std::move(value));
    }
    if (o.via.array.size == 4) r.body = a[3].as<std::string>();  // bin or str
    if (r.status < 100 || r.status > 599) {
      return absl::InvalidArgumentError(
          absl::StrCat("a replica answered HTTP status ", r.status));
    }
    return r;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("a replica's HTTP answer is malformed: ", e.what()));
  }
}

Ingress::Ingress(Options options)
    : options_(std::move(options)),
      routes_(std::make_shared<std::vector<RouteTarget>>()) {}

Ingress::~Ingress() { http_.reset(); }  // waits for requests in progress

void Ingress::SetRoutes(std::vector<RouteTarget> routes) {
  auto next =
      std::make_shared<const std::vector<RouteTarget>>(std::move(routes));
  absl::MutexLock lock(&mu_);
  routes_ = std::move(next);
}

absl::StatusOr<int> Ingress::Start(const std::string& host, int port) {
  HttpServer::Options http;
  http.token = options_.token.empty() ? nullptr : &options_.token;
  http.api_key = options_.api_key.empty() ? nullptr : &options_.api_key;
  http.identify = options_.identify;
  http.threads = options_.threads;
  http.keep_alive = true;
  http_ = std::make_unique<HttpServer>(http);
  // Every request runs a deployment, a GET too: submitters' work.
  http_->Route("/", options_.max_body_bytes,
               [this](const HttpRequest& r) {
                 absl::Time start = absl::Now();
                 std::string route;
                 HttpResponse response = Handle(r, &route);
                 ServeMetrics::Get().Http(
                     route, r.method, response.status,
                     absl::ToDoubleMilliseconds(absl::Now() - start));
                 return response;
               },
               {Role::kSubmitter, Role::kSubmitter});
  absl::StatusOr<int> bound = http_->Start(host, port);
  if (!bound.ok()) http_.reset();
  return bound;
}

HttpResponse Ingress::Handle(const HttpRequest& request,
                             std::string* route_out) {
  std::shared_ptr<const std::vector<RouteTarget>> routes;
  {
    absl::MutexLock lock(&mu_);
    routes = routes_;
  }
  *route_out = "/-/";
  if (request.path == "/-/healthz") return {200, "success", "text/plain"};
  if (request.path == "/-/routes") {
    std::string body = "{";
    for (const RouteTarget& r : *routes) {
      if (body.size() > 1) body += ", ";
      absl::StrAppend(&body, JsonString(r.prefix), ": ",
                      JsonString(r.deployment));
    }
    return {200, body + "}"};
  }
  const RouteTarget* route = nullptr;
  for (const RouteTarget& r : *routes) {
    bool match = request.path == r.prefix || r.prefix == "/" ||
                 (request.path.rfind(r.prefix, 0) == 0 &&
                  request.path[r.prefix.size()] == '/');
    if (match && (route == nullptr || r.prefix.size() > route->prefix.size())) {
      route = &r;
    }
  }
  *route_out = route ? route->prefix : "(none)";
  if (route == nullptr) {
    return HttpServer::Error(404,
                             absl::StrCat("no route for path ", request.path,
                                          " (GET /-/routes lists them)"));
  }
  ServeRequest call;
  call.method = kHttpMethod;
  call.batch_key = kHttpBatchKey;
  if (const std::string* d = request.Header("X-Loom-Deadline-Ms")) {
    int64_t ms = 0;
    if (!absl::SimpleAtoi(*d, &ms) || ms <= 0 || ms > kMaxDeadlineMs) {
      return HttpServer::Error(
          400,
          absl::StrCat("X-Loom-Deadline-Ms must be whole milliseconds from "
                       "now, 1 to ",
                       kMaxDeadlineMs, "; got \"", *d, "\""));
    }
    call.deadline = absl::Now() + absl::Milliseconds(ms);
  }
  if (const std::string* p = request.Header("X-Loom-Priority")) {
    if (!absl::SimpleAtoi(*p, &call.priority)) {
      return HttpServer::Error(
          400,
          absl::StrCat("X-Loom-Priority must be an integer; got \"", *p, "\""));
    }
  }
  const std::string* key = request.Header("Idempotency-Key");
  call.retryable =
      request.method == "GET" || request.method == "HEAD" || key != nullptr;
  call.payload = PackHttpRequest(request, route->prefix);
  call.accepts_stream = true;
  if (key == nullptr) return Forward(route->deployment, std::move(call));
  if (key->empty() || key->size() > kMaxIdempotencyKey) {
    return HttpServer::Error(
        400, absl::StrCat("Idempotency-Key must be 1 to ", kMaxIdempotencyKey,
                          " characters"));
  }
  // Keys are per deployment: two services may pick the same one.
  std::string cache_key = absl::StrCat(route->deployment, "\n", *key);
  IdempotencyCache::Begun begun = idempotency_.Begin(cache_key);
  if (begun.kept) return std::move(*begun.kept);
  // Then the cluster's record: a retry may come through another ingress.
  SharedIdempotency::Claim claim = shared_idempotency_.Begin(cache_key);
  HttpResponse r = claim.kept ? std::move(*claim.kept)
                              : Forward(route->deployment, std::move(call));
  if (!claim.kept) shared_idempotency_.Finish(cache_key, r);
  idempotency_.Finish(cache_key, r);
  return r;
}

HttpResponse Ingress::Forward(const std::string& deployment,
                              ServeRequest call) {
  struct Wait {
    absl::Notification done;
    ServeReply reply;
  };
  auto wait = std::make_shared<Wait>();
  options_.router->Submit(deployment, std::move(call),
                          [wait](ServeReply reply) {
                            wait->reply = std::move(reply);
                            wait->done.Notify();
                          });
  wait->done.WaitForNotification();
  ServeReply& reply = wait->reply;
  if (reply.code == ServeReply::kOk && reply.stream) {
    // The first item is the head: [status, content type, headers].
    absl::StatusOr<std::optional<std::string>> head =
        reply.stream->Next(absl::Seconds(kStreamItemTimeoutS));
    if (!head.ok() || !head->has_value()) {
      return HttpServer::Error(
          502,
          absl::StrCat("the replica's stream ended before its first item: ",
                       head.ok() ? "empty" : head.status().ToString()));
    }
    absl::StatusOr<HttpResponse> answer = UnpackHttpAnswer(**head);
    if (!answer.ok()) return HttpServer::Error(500, answer.status().ToString());
    answer->stream = StreamBody(std::move(reply.stream));
    return std::move(*answer);
  }
  if (reply.code == ServeReply::kOk) {
    absl::StatusOr<HttpResponse> answer = UnpackHttpAnswer(reply.value);
    if (!answer.ok()) return HttpServer::Error(500, answer.status().ToString());
    return std::move(*answer);
  }
  HttpResponse r = HttpServer::Error(HttpCodeOf(reply.code), reply.message);
  if (reply.code == ServeReply::kBackPressure) {
    r.headers.emplace_back("Retry-After",
                           std::to_string(options_.retry_after_s));
  }
  return r;
}

}  // namespace loom::serve
