// src/raylet/quota_gate.cc
#include "src/raylet/quota_gate.h"

namespace loom::raylet {
namespace {

// Quantities compare in the scheduler's fixed point, so that 0.1 CPU taken
// ten times fits a quota of 1.
double Round(double v) { return FixedPoint::FromDouble(v).ToDouble(); }

}  // namespace

QuotaGate::Verdict QuotaGate::Check(const JobId& job,
                                    const ResourceSet& demand) {
  if (!Known(job)) {
    if (!asking_.contains(job)) unknown_.insert(job);
    ++waiting_[job];
    return kUnknown;
  }
  auto a = allowed_.find(job);
  if (a == allowed_.end()) return kAdmit;
  const Use& u = use_[job];
  double cpus = demand.Get(kCpu).ToDouble();
  double gpus = demand.Get(kGpu).ToDouble();
  bool over = (a->second.cpus() >= 0 && cpus > 0 &&
               Round(u.cpus + cpus) > Round(a->second.cpus())) ||
              (a->second.gpus() >= 0 && gpus > 0 &&
               Round(u.gpus + gpus) > Round(a->second.gpus()));
  if (!over) return kAdmit;
  ++waiting_[job];
  return kHold;
}

void QuotaGate::Take(const JobId& job, const ResourceSet& resources) {
  Use& u = use_[job];
  u.cpus += resources.Get(kCpu).ToDouble();
  u.gpus += resources.Get(kGpu).ToDouble();
}

void QuotaGate::Give(const JobId& job, const ResourceSet& resources) {
  auto it = use_.find(job);
  if (it == use_.end()) return;
  it->second.cpus -= resources.Get(kCpu).ToDouble();
  it->second.gpus -= resources.Get(kGpu).ToDouble();
  if (Round(it->second.cpus) <= 0 && Round(it->second.gpus) <= 0) {
    use_.erase(it);
  }
}

bool QuotaGate::OnHeartbeatReply(const rpc::HeartbeatReply& reply) {
  bool freed = !asking_.empty();
  next_job_ = std::max<uint32_t>(next_job_, reply.next_job());
  for (const JobId& job : asking_) {
    if (job.ToInt() >= next_job_) settled_.insert(job);
  }
  asking_.clear();
  absl::flat_hash_map<JobId, rpc::JobUse> allowed;
  for (const rpc::JobUse& a : reply.allowances()) {
    auto job = JobId::FromBinary(a.job_id());
    if (!job.ok()) continue;
    auto old = allowed_.find(*job);
    if (old == allowed_.end() || a.cpus() != old->second.cpus() ||
        a.gpus() != old->second.gpus()) {
      freed = true;
    }
    allowed[*job] = a;
  }
  if (allowed.size() < allowed_.size()) freed = true;  // a job ended
  allowed_ = std::move(allowed);
  return freed;
}

void QuotaGate::FillUse(const absl::flat_hash_map<JobId, uint64_t>& store_bytes,
                        rpc::HeartbeatRequest* req) {
  asking_.insert(unknown_.begin(), unknown_.end());
  unknown_.clear();
  absl::flat_hash_map<JobId, rpc::JobUse*> out;
  auto entry = [&](const JobId& job) {
    rpc::JobUse*& u = out[job];
    if (u == nullptr) {
      u = req->add_job_use();
      u->set_job_id(job.Binary());
    }
    return u;
  };
  for (const auto& [job, u] : use_) {
    entry(job)->set_cpus(Round(u.cpus));
    entry(job)->set_gpus(Round(u.gpus));
  }
  for (const auto& [job, bytes] : store_bytes) {
    if (bytes > 0) entry(job)->set_object_store_bytes(bytes);
  }
  for (const auto& [job, n] : waiting_) entry(job)->set_waiting(n);
}

absl::flat_hash_map<JobId, uint64_t> QuotaGate::StoreLimits() const {
  absl::flat_hash_map<JobId, uint64_t> out;
  for (const auto& [job, a] : allowed_) {
    if (a.object_store_bytes() >= 0) {
      out[job] = static_cast<uint64_t>(a.object_store_bytes());
    }
  }
  return out;
}

}  // namespace loom::raylet
