// src/raylet/node_quotas.cc
//
// NodeManager's side of per-job quotas (quota_gate.h, docs/security.md):
// the lease queue asks the gate before it grants, heartbeats carry each
// job's use here, and their replies bring what each job may use here, for
// leases and for the store.
#include "src/raylet/node_manager.h"

namespace loom::raylet {

bool NodeManager::JobGate::Holds(uint64_t handle, const ResourceSet& demand) {
  auto it = node_->pending_.find(handle);
  if (it == node_->pending_.end()) return false;
  return node_->quotas_.Check(it->second.job, demand) != QuotaGate::kAdmit;
}

void NodeManager::JobGate::Granted(uint64_t handle, const ResourceSet& demand) {
  auto it = node_->pending_.find(handle);
  if (it != node_->pending_.end()) node_->quotas_.Take(it->second.job, demand);
}

void NodeManager::GiveBack(const JobId& job, const Allocation& allocation,
                           const ResourceSet& lent) {
  ResourceSet held = allocation.resources;
  held.Subtract(lent);  // given back when lent
  quotas_.Give(job, held);
}

void NodeManager::OnQuotas(const rpc::HeartbeatReply& reply) {
  bool freed = quotas_.OnHeartbeatReply(reply);
  if (options_.object_store != nullptr) {
    options_.object_store->SetJobLimits(quotas_.StoreLimits());
  }
  std::vector<std::function<void()>> ready;
  for (auto it = quota_waiters_.begin(); it != quota_waiters_.end();) {
    if (quotas_.Known(it->first)) {
      ready.push_back(std::move(it->second));
      it = quota_waiters_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& fn : ready) fn();
  if (freed) Dispatch();
}

void NodeManager::WhenQuotaKnown(const JobId& job, std::function<void()> then) {
  if (quotas_.Known(job)) return then();
  quotas_.Ask(job);
  quota_waiters_.emplace_back(job, std::move(then));
  gcs_->HeartbeatSoon();
}

}  // namespace loom::raylet
