// src/raylet/quota_gate.h
//
// QuotaGate: the raylet's side of per-job quotas (docs/security.md). It
// counts what each job holds here (its leases' CPUs and GPUs, from grant to
// release, less the CPU a blocked worker lends back) and holds a job's
// lease requests past what the head says the job may hold here: its quota
// less its use on the other nodes, as of the last heartbeat. A job the head
// had not numbered at its last heartbeat reply is unknown: its requests
// wait for the reply to a heartbeat sent after they came (the caller asks
// for one at once).
//
//   QuotaGate gate;
//   gate.OnHeartbeatReply(reply);
//   if (gate.Check(job, demand) == QuotaGate::kAdmit) gate.Take(job, demand);
#ifndef LOOM_SRC_RAYLET_QUOTA_GATE_H_
#define LOOM_SRC_RAYLET_QUOTA_GATE_H_

#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "proto/gcs.pb.h"
#include "scheduler/resource_set.h"
#include "src/common/ids.h"

namespace loom::raylet {

// Not thread-safe: owned by the raylet's event loop.
class QuotaGate {
 public:
  enum Verdict { kAdmit, kHold, kUnknown };
  // Whether `job` may take `demand` here now; a request held or unknown is
  // counted as waiting until the next BeginPass.
  Verdict Check(const JobId& job, const ResourceSet& demand);
  void Take(const JobId& job, const ResourceSet& resources);
  void Give(const JobId& job, const ResourceSet& resources);
  // Starts a scheduling pass: the waiting counts start again.
  void BeginPass() { waiting_.clear(); }
  // Whether the head has said if `job` has a quota; Ask: it will be asked
  // in the next heartbeat.
  bool Known(const JobId& job) const {
    return job.ToInt() < next_job_ || settled_.contains(job);
  }
  void Ask(const JobId& job) {
    if (!Known(job) && !asking_.contains(job)) unknown_.insert(job);
  }
  bool AnyUnknown() const { return !unknown_.empty(); }

  // Takes the allowances of a heartbeat reply; true when one grew or went
  // away (held requests may go now).
  bool OnHeartbeatReply(const rpc::HeartbeatReply& reply);
  // Each job's use here for a heartbeat, with its primary copies' bytes in
  // the store. Its reply settles the jobs unknown until now.
  void FillUse(const absl::flat_hash_map<JobId, uint64_t>& store_bytes,
               rpc::HeartbeatRequest* req);
  // The bytes each job with an object-store quota may hold in this store.
  absl::flat_hash_map<JobId, uint64_t> StoreLimits() const;

 private:
  struct Use {
    double cpus = 0;
    double gpus = 0;
  };
  absl::flat_hash_map<JobId, Use> use_;
  absl::flat_hash_map<JobId, rpc::JobUse> allowed_;
  absl::flat_hash_map<JobId, int64_t> waiting_;
  uint32_t next_job_ = 0;  // the head had numbered the jobs below this
  // Jobs past next_job_: unknown, asked about in the heartbeat in flight,
  // and known (a reply came to a heartbeat sent after they were seen).
  absl::flat_hash_set<JobId> unknown_, asking_, settled_;
};

}  // namespace loom::raylet

#endif  // LOOM_SRC_RAYLET_QUOTA_GATE_H_
