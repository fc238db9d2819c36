// src/raylet/node_deaths.cc
//
// NodeManager, when a process ends: a worker or driver of this node (seen
// through the ProcessWatch, reaped on the loop), a worker elsewhere (the
// head's WORKER_DEAD), or a job. What they held is released, the leases
// they asked for cancelled, and the objects they owned freed.
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "src/common/process.h"
#include "src/raylet/node_manager.h"

namespace loom::raylet {

void NodeManager::ReapEnded() {
  for (const Worker& w : pool_->ReapDead()) OnWorkerDied(w);
  std::vector<std::pair<WorkerId, Driver>> dead;
  for (const auto& [id, d] : drivers_) {
    if (!ProcessAlive(d.pid)) dead.emplace_back(id, d);
  }
  for (const auto& [id, d] : dead) {
    watch_->Forget(d.pid);
    OnDriverDied(id, d);
  }
}

void NodeManager::OnWorkerDied(const Worker& worker) {
  workers_.Forget(worker.id);
  if (auto it = lease_of_worker_.find(worker.id);
      it != lease_of_worker_.end()) {
    ReleaseLease(it->second, false);
  }
  // Leases this worker held for its own nested tasks die with it.
  FreeWhere([&](const WorkerId& requester,
                const JobId&) { return requester == worker.id; },
            "the requesting worker died");
  ReportGone(worker);
}

void NodeManager::ReportGone(const Worker& worker, const std::string& cause) {
  // Other nodes may hold leases it asked for (spilled there) and objects it
  // owned: the head tells them. A worker never given a job has neither.
  if (!worker.job) return;
  std::string address = absl::StrCat(options_.host, ":", worker.port);
  // Its objects here are freed now, not on the head's echo: that needs the
  // head up, and the store should not wait on it.
  if (object_manager_) object_manager_->FreeOwnedBy(address, *worker.job);
  gcs_->ReportWorkerDeath(worker.id, address, *worker.job, cause);
}

void NodeManager::OnRemoteWorkerDead(const rpc::Event& e) {
  auto worker = WorkerId::FromBinary(e.id());
  auto job = JobId::FromBinary(e.job_id());
  if (!worker.ok() || !job.ok()) return;
  FreeWhere([&](const WorkerId& requester,
                const JobId&) { return requester == *worker; },
            "the requesting worker died");
  if (object_manager_) object_manager_->FreeOwnedBy(e.address(), *job);
}

void NodeManager::FreeWhere(
    const std::function<bool(const WorkerId&, const JobId&)>& match,
    const std::string& why) {
  std::vector<LeaseId> leases;
  for (const auto& [id, lease] : leases_) {
    if (match(lease.requester, lease.job) && !lease.detached) {
      leases.push_back(id);
    }
  }
  for (const auto& id : leases) ReleaseLease(id, /*kill_worker=*/true);
  std::vector<uint64_t> requests;
  for (const auto& [handle, p] : pending_) {
    if (match(p.requester, p.job)) requests.push_back(handle);
  }
  for (uint64_t h : requests) Cancel(h, why);
}

void NodeManager::OnDriverDied(const WorkerId& id, const Driver& driver) {
  spdlog::info("driver pid {} of job {} is gone; freeing its workers",
               driver.pid, driver.job.ToInt());
  drivers_.erase(id);
  FreeWhere(
      [&](const WorkerId&, const JobId& job) { return job == driver.job; },
      "the job's driver died");
  for (const Worker& w : pool_->KillJob(driver.job)) ReportGone(w);
  gcs_->MarkJobFinished(driver.job.Binary(), /*driver_died=*/true);
}

void NodeManager::OnJobFinished(const std::string& job_id,
                                const std::string& driver) {
  auto job = JobId::FromBinary(job_id);
  if (!job.ok()) return;
  FreeWhere([&](const WorkerId&, const JobId& j) { return j == *job; },
            "the job ended");
  // Nobody can ask for a dead owner's objects any more (Ray's owner death):
  // the driver's go here, its workers' on their WORKER_DEAD.
  for (const Worker& w : pool_->KillJob(*job)) ReportGone(w);
  if (object_manager_) object_manager_->FreeOwnedBy(driver, *job);
}

}  // namespace loom::raylet
