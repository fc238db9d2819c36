// src/gcs/dashboard.h
//
// Dashboard: the head's web pages (docs/observability.md "Dashboard") and
// the JSON they read, on the head's HTTP port beside the job API:
//
//   GET  /                       the pages (one HTML file, app.js, style.css,
//   GET  /dashboard/{file}         compiled into the binary); without a
//                                  token: the login form
//   POST /login                  form field "token": sets the cookie
//                                  HttpServer::kTokenCookie, back to /
//   POST /logout                 clears it
//   GET  /api/dashboard/cluster            nodes (paged), their machines,
//                                          resources, demands
//   GET  /api/dashboard/jobs               drivers and submissions, newest
//                                          first (paged)
//   GET  /api/dashboard/actors             filtered, sorted, paged
//   GET  /api/dashboard/actors/{id}        one actor and its calls
//   GET  /api/dashboard/tasks              filtered, paged task records
//   GET  /api/dashboard/tasks/summary      per function: states, p50/95/99
//   GET  /api/dashboard/placement_groups
//   GET  /api/dashboard/objects            each node's store (paged)
//   GET  /api/dashboard/logs?node=ID       a node's log files
//   GET  /api/dashboard/log?node=ID&name=F&offset=N   part of one
//   GET  /api/dashboard/history?since_ms=T   the last hour's samples
//   GET  /api/dashboard/serve              the serve controller's status
//
// Every list is filtered and paged here (?offset=&limit=, at most 500), so
// a page asks for what it shows. Jobs come from the job API (job_api.h).
// Handlers run on the HTTP server's threads; tables owned by the head's
// loop are read there (a copy of what the page shows), task records off it.
#ifndef LOOM_GCS_DASHBOARD_H_
#define LOOM_GCS_DASHBOARD_H_

#include <atomic>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/common/http_server.h"
#include "src/gcs/cluster_history.h"

namespace loom::gcs {

class GcsServer;

// The bytes of a hex id ("" for ""); InvalidArgument naming `name` when it
// is not hex.
absl::StatusOr<std::string> IdFromHex(const std::string& hex, const char* name);

// Thread-safe.
class Dashboard {
 public:
  struct Options {
    absl::Duration sample_every = absl::Seconds(10);
    size_t samples = 360;  // an hour of them
    // Raylets are asked for their machines' figures only while the
    // dashboard was looked at within this (an unwatched cluster's raylets
    // are left alone).
    absl::Duration watched_for = absl::Minutes(10);
    // Where the operator's Grafana and Prometheus are (http(s) URLs, ""
    // when there are none): the pages link them.
    std::string grafana_url;
    std::string prometheus_url;
  };
  // "" for an http:// or https:// URL; else what is wrong with it.
  static std::string CheckLinkUrl(const std::string& url);
  explicit Dashboard(GcsServer* server);
  Dashboard(GcsServer* server, Options options);
  // `http` must outlive the routes (the login asks it who a token is).
  void AddRoutes(HttpServer* http);
  // Samples the cluster into the history from now on, on the head's loop
  // when it wakes anyway (dashboard_history.cc). The head's loop must stop
  // before this is destroyed.
  void StartHistory();

 private:
  HttpResponse Page(const HttpRequest& req) const;
  HttpResponse Login(const HttpRequest& req) const;
  HttpResponse Api(const HttpRequest& req);

  // dashboard_state.cc: the JSON.
  HttpResponse Cluster(const HttpRequest& req) const;
  HttpResponse Jobs(const HttpRequest& req) const;
  HttpResponse Actors(const HttpRequest& req) const;
  HttpResponse Actor(const std::string& id) const;
  HttpResponse Tasks(const HttpRequest& req) const;
  HttpResponse TaskSummary(const HttpRequest& req) const;
  HttpResponse PlacementGroups() const;
  HttpResponse Serve() const;
  HttpResponse Objects(const HttpRequest& req) const;
  HttpResponse Logs(const HttpRequest& req) const;
  HttpResponse Log(const HttpRequest& req) const;
  HttpResponse History(const HttpRequest& req) const;

  // On the head's loop.
  void Sample();
  void ArmSample();

  GcsServer* server_;
  const Options options_;
  HttpServer* http_ = nullptr;
  ClusterHistory history_;
  std::atomic<int64_t> last_looked_ms_{0};  // the last dashboard request
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_DASHBOARD_H_
