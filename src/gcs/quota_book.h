// src/gcs/quota_book.h
//
// QuotaBook: per-job quotas at the head (docs/security.md). It keeps the
// quota of each running job that has one, hears in each node's heartbeat
// what every job uses there (leases' CPUs and GPUs, primary copies' bytes,
// requests held back), and answers each heartbeat with what each such job
// may use on that node: its quota less its use on the other nodes (-1: no
// limit on that resource). Nodes granting at once between heartbeats may
// together overshoot a quota by what each grants in one heartbeat period;
// the next replies hold the job back until it is under again.
//
//   QuotaBook quotas;
//   quotas.Start(job.job_id(), job.quota());
//   quotas.OnHeartbeat(req, reply);
#ifndef LOOM_GCS_QUOTA_BOOK_H_
#define LOOM_GCS_QUOTA_BOOK_H_

#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "proto/gcs.pb.h"

namespace loom::gcs {

// InvalidArgument for a negative or not finite limit.
absl::Status ValidateQuota(const rpc::JobQuota& quota);
bool HasLimits(const rpc::JobQuota& quota);

// Not thread-safe: runs on the head's loop.
class QuotaBook {
 public:
  void Start(const std::string& job_id, const rpc::JobQuota& quota);
  void End(const std::string& job_id);
  // Takes the node's use and adds the allowances to the reply.
  void OnHeartbeat(const rpc::HeartbeatRequest& req,
                   rpc::HeartbeatReply* reply);
  void OnNodeDead(const std::string& node_id);
  // A running job's use over all nodes, when it has a quota.
  std::optional<rpc::JobUse> Use(const std::string& job_id) const;

 private:
  struct Job {
    rpc::JobQuota quota;
    absl::flat_hash_map<std::string, rpc::JobUse> nodes;  // by node id
  };
  absl::flat_hash_map<std::string, Job> jobs_;  // by binary job id
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_QUOTA_BOOK_H_
