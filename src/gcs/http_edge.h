// src/gcs/http_edge.h
//
// What the head's HTTP handlers (job_api.cc, dashboard*.cc) share: running
// work on the head's loop from a server thread and waiting for its answer,
// turning a Status into an HTTP error, writing a number in JSON.
//
//   auto jobs = OnLoop<std::vector<rpc::JobSubmission>>(
//       server, [&](auto done) { done(server->submissions().List()); });
//   auto actors = AskLoop<rpc::ListActorsReply>(
//       server, [server](auto* reply, Done done) {
//         server->HandleListActors({}, reply, std::move(done));
//       });
#ifndef LOOM_GCS_HTTP_EDGE_H_
#define LOOM_GCS_HTTP_EDGE_H_

#include <chrono>
#include <cmath>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "src/common/http_server.h"
#include "src/gcs/gcs_server.h"

namespace loom::gcs {

// How long a handler waits for the head's loop.
inline constexpr auto kHeadWait = std::chrono::seconds(30);

// 400, 404, 403, 409, 413 for the codes that mean them; 503 otherwise.
int HttpStatusFor(const absl::Status& s);

inline HttpResponse ErrorFor(const absl::Status& s) {
  return HttpServer::Error(HttpStatusFor(s), std::string(s.message()));
}

// A number in JSON: whole ones without a fraction ("2", not "2.0").
inline std::string JsonNumber(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<int64_t>(v));
  }
  return absl::StrCat(v);
}

// Runs fn(done) on the head's loop and waits for the value it gives done.
template <typename T, typename Fn>
absl::StatusOr<T> OnLoop(GcsServer* server, Fn fn) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<T>>>();
  auto future = promise->get_future();
  server->loop().Post([fn = std::move(fn), promise]() mutable {
    fn([promise](absl::StatusOr<T> v) { promise->set_value(std::move(v)); });
  });
  if (future.wait_for(kHeadWait) != std::future_status::ready) {
    return absl::UnavailableError("the head did not answer in time");
  }
  return future.get();
}

// Runs a Handle*-shaped call, handle(Reply*, Done), on the head's loop;
// its reply once done, or its error.
template <typename Reply, typename Fn>
absl::StatusOr<Reply> AskLoop(GcsServer* server, Fn handle) {
  return OnLoop<Reply>(server, [handle = std::move(handle)](auto done) {
    auto reply = std::make_shared<Reply>();
    handle(reply.get(), [reply, done](absl::Status s) {
      if (s.ok()) {
        done(std::move(*reply));
      } else {
        done(std::move(s));
      }
    });
  });
}

}  // namespace loom::gcs

#endif  // LOOM_GCS_HTTP_EDGE_H_
