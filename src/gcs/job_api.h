// src/gcs/job_api.h
//
// JobApi: the head's HTTP API for job submission (docs/jobs.md), shaped as
// Ray's job REST API so that Ray's `ray job submit --address
// http://HEAD:8265` and JobSubmissionClient work against a Loom head, and
// `loom job` and loom.job_submission use it too:
//
//   GET    /api/version
//   POST   /api/jobs/                  {"entrypoint": ..., "submission_id":
//   ...} GET    /api/jobs/                  every job GET    /api/jobs/{id} one
//   job GET    /api/jobs/{id}/logs         {"logs": ...} (?offset=N: from byte
//   N) WS     /api/jobs/{id}/logs/tail    the output as it comes (WebSocket)
//   POST   /api/jobs/{id}/stop         {"stopped": bool}
//   DELETE /api/jobs/{id}              {"deleted": bool}
//   GET    /api/packages/gcs/{name}    200 when the head has that package
//   PUT    /api/packages/gcs/{name}    uploads a working directory's zip
//   GET    /api/audit                  the audit log (admins only)
//
// Handlers run on the HTTP server's threads and hand the work to the head's
// loop, waiting for its answer.
//
//   JobApi api(&server);
//   api.AddRoutes(&http);
#ifndef LOOM_GCS_JOB_API_H_
#define LOOM_GCS_JOB_API_H_

#include <string>

#include "proto/gcs.pb.h"
#include "src/common/http_server.h"

namespace loom::gcs {

class GcsServer;

// Thread-safe.
class JobApi {
 public:
  // Packages are kept in the head's KV, at most this large.
  static constexpr int64_t kMaxPackageBytes = 64 << 20;

  explicit JobApi(GcsServer* server) : server_(server) {}
  void AddRoutes(HttpServer* http);

 private:
  HttpResponse Jobs(const HttpRequest& req);
  HttpResponse Submit(const HttpRequest& req);
  HttpResponse Logs(const std::string& id, const HttpRequest& req);
  void Tail(const HttpRequest& req, const HttpServer::Send& send);
  // The job, from the head's loop; NotFound for an unknown id.
  absl::StatusOr<rpc::JobSubmission> GetJob(const std::string& id);
  HttpResponse AuditEntries(const HttpRequest& req);
  // A submitter may stop or delete (`what`) only the jobs it submitted;
  // PermissionDenied (audited) for another's.
  absl::Status MayChange(const HttpRequest& req, const std::string& id,
                         const char* what);
  // An entry in the head's audit log for the request.
  void Audit(const HttpRequest& req, const std::string& action,
             const std::string& target, const absl::Status& result);
  // Appends the job's output from *at on (at most 64 MiB), moving *at.
  absl::Status ReadLog(const rpc::JobSubmission& job, int64_t* at,
                       std::string* logs);
  HttpResponse Packages(const HttpRequest& req);

  GcsServer* server_;
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_JOB_API_H_
