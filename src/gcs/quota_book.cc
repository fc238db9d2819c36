// src/gcs/quota_book.cc
#include "src/gcs/quota_book.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace loom::gcs {

absl::Status ValidateQuota(const rpc::JobQuota& q) {
  for (double v : {q.max_cpus(), q.max_gpus()}) {
    if (!std::isfinite(v) || v < 0 || v > 1e9) {
      return absl::InvalidArgumentError(
          "max_cpus and max_gpus must be in [0, 1e9] (0: no limit)");
    }
  }
  for (int64_t v :
       {q.max_object_store_bytes(), q.max_actors(), q.max_pending_tasks()}) {
    if (v < 0) {
      return absl::InvalidArgumentError(
          "max_object_store_bytes, max_actors and max_pending_tasks must not "
          "be negative (0: no limit)");
    }
  }
  return absl::OkStatus();
}

bool HasLimits(const rpc::JobQuota& q) {
  return q.max_cpus() > 0 || q.max_gpus() > 0 ||
         q.max_object_store_bytes() > 0 || q.max_actors() > 0 ||
         q.max_pending_tasks() > 0;
}

void QuotaBook::Start(const std::string& job_id, const rpc::JobQuota& quota) {
  if (HasLimits(quota)) jobs_[job_id].quota = quota;
}

void QuotaBook::End(const std::string& job_id) { jobs_.erase(job_id); }

void QuotaBook::OnNodeDead(const std::string& node_id) {
  for (auto& [id, job] : jobs_) job.nodes.erase(node_id);
}

void QuotaBook::OnHeartbeat(const rpc::HeartbeatRequest& req,
                            rpc::HeartbeatReply* reply) {
  if (jobs_.empty()) return;
  const std::string& node = req.node_id();
  for (auto& [id, job] : jobs_) job.nodes.erase(node);
  for (const rpc::JobUse& use : req.job_use()) {
    auto it = jobs_.find(use.job_id());
    if (it != jobs_.end()) it->second.nodes[node] = use;
  }
  for (const auto& [id, job] : jobs_) {
    rpc::JobUse elsewhere;
    for (const auto& [n, use] : job.nodes) {
      if (n == node) continue;
      elsewhere.set_cpus(elsewhere.cpus() + use.cpus());
      elsewhere.set_gpus(elsewhere.gpus() + use.gpus());
      elsewhere.set_object_store_bytes(elsewhere.object_store_bytes() +
                                       use.object_store_bytes());
    }
    const rpc::JobQuota& q = job.quota;
    rpc::JobUse* a = reply->add_allowances();
    a->set_job_id(id);
    a->set_cpus(
        q.max_cpus() > 0 ? std::max(0.0, q.max_cpus() - elsewhere.cpus()) : -1);
    a->set_gpus(
        q.max_gpus() > 0 ? std::max(0.0, q.max_gpus() - elsewhere.gpus()) : -1);
    a->set_object_store_bytes(
        q.max_object_store_bytes() > 0
            ? std::max<int64_t>(0, q.max_object_store_bytes() -
                                       elsewhere.object_store_bytes())
            : -1);
  }
}

std::optional<rpc::JobUse> QuotaBook::Use(const std::string& job_id) const {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return std::nullopt;
  rpc::JobUse total;
  total.set_job_id(job_id);
  for (const auto& [n, use] : it->second.nodes) {
    total.set_cpus(total.cpus() + use.cpus());
    total.set_gpus(total.gpus() + use.gpus());
    total.set_object_store_bytes(total.object_store_bytes() +
                                 use.object_store_bytes());
    total.set_waiting(total.waiting() + use.waiting());
  }
  return total;
}

}  // namespace loom::gcs
