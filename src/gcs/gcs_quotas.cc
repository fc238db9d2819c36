// src/gcs/gcs_quotas.cc
//
// GcsServer's side of per-job quotas (quota_book.h, docs/security.md): the
// quota a job gets, the actor count, and each job's use for GetJobs.
#include "absl/strings/str_cat.h"
#include "src/gcs/gcs_server.h"

namespace loom::gcs {

absl::StatusOr<rpc::JobQuota> GcsServer::QuotaForJob(
    const rpc::AddJobRequest& req) {
  if (!req.submission_id().empty()) {
    // A submission's driver: the quota it was submitted with, whatever the
    // driver asks for.
    auto submission = submissions_.Get(req.submission_id());
    if (submission.ok() &&
        (*submission).status() == rpc::JobSubmission::RUNNING) {
      return (*submission).quota();
    }
  }
  if (auto s = ValidateQuota(req.quota()); !s.ok()) return s;
  return req.quota();
}

absl::Status GcsServer::AdmitActor(const std::string& job_id) {
  auto id = JobId::FromBinary(job_id);
  if (!id.ok()) return absl::OkStatus();  // refused later, saying why
  auto it = jobs_.find(JobId(*id).ToInt());
  if (it == jobs_.end()) return absl::OkStatus();
  int64_t max = it->second.quota().max_actors();
  if (max <= 0) return absl::OkStatus();
  int64_t alive = actors_.CountAlive(job_id);
  if (alive < max) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("job ", JobId(*id).Hex(), " is at its actor quota: ", alive,
                   " of its actors are alive or pending, and it may have ", max,
                   " (--max-actors); kill one (loom.kill) to create another"));
}

rpc::JobInfo GcsServer::WithUse(const rpc::JobInfo& job) const {
  rpc::JobInfo out = job;
  if (auto use = quotas_.Use(job.job_id())) {
    *out.mutable_use() = *use;
    if (job.quota().max_actors() > 0) {
      out.mutable_use()->set_actors(actors_.CountAlive(job.job_id()));
    }
  }
  return out;
}

}  // namespace loom::gcs
