// NodeManager's memory monitor: every memory_check_period, measures memory
// and, above the threshold, kills one leased worker (PickVictim), recording
// why so that the task's owner sees OutOfMemoryError rather than a crash.
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "src/raylet/node_manager.h"

namespace loom::raylet {
namespace {

// After a kill the next waits this long: the kernel frees the victim's
// memory, and the node's figures catch up, before another worker goes.
constexpr absl::Duration kKillGap = absl::Seconds(1);
// Kill causes kept for owners that have not asked yet.
constexpr size_t kMaxDeaths = 1024;

}  // namespace

absl::StatusOr<MemoryUsage> NodeManager::MeasureMemory() {
  if (options_.memory_limit_bytes <= 0) {
    return ReadNodeMemory(options_.memory_root);
  }
  // A limit of its own: what this raylet's workers use counts, so that other
  // processes on the machine (other raylets, tests) never trigger it.
  MemoryUsage m;
  m.limit = options_.memory_limit_bytes;
  m.source = "this raylet's workers (PSS)";
  for (const Worker* w : pool_->All()) {
    m.used += ProcessMemory(options_.memory_root, w->pid);
  }
  return m;
}

void NodeManager::CheckMemory() {
  double threshold = options_.memory_usage_threshold;
  if (threshold <= 0 || threshold >= 1) return;  // off
  // Rides on the loop's other wakeups (heartbeats, requests), two seconds
  // late at most: a busy node wakes often, and an idle one heartbeats at
  // least every 2 s with the default period (gcs_link.h), so the check does
  // not wake it on its own.
  loop_.PostLazy(options_.memory_check_period, kQuietSlack,
                 [this] { CheckMemory(); });
  auto m = MeasureMemory();
  if (!m.ok()) {
    spdlog::warn("memory monitor: {}", m.status().ToString());
    return;
  }
  memory_used_.Set(static_cast<double>(m->used));
  if (static_cast<double>(m->used) <=
      threshold * static_cast<double>(m->limit)) {
    return;
  }
  absl::Time now = options_.clock->Now();
  if (now - last_memory_kill_ < kKillGap) return;
  std::vector<KillCandidate> candidates;
  std::vector<LeaseId> lease_ids;
  for (const auto& [id, lease] : leases_) {
    if (!pool_->Find(lease.worker)) continue;
    const Worker* w = pool_->Find(lease.worker);
    candidates.push_back({lease.worker, lease.actor, lease.retriable,
                          lease.granted,
                          ProcessMemory(options_.memory_root, w->pid)});
    lease_ids.push_back(id);
  }
  auto excess = static_cast<int64_t>(static_cast<double>(m->used) -
                                     threshold * static_cast<double>(m->limit));
  std::optional<size_t> victim = PickVictim(candidates, excess);
  if (!victim) return;  // nothing leased: nothing of ours to kill
  last_memory_kill_ = now;
  LeaseId lease_id = lease_ids[*victim];
  std::string figures = absl::StrFormat(
      "memory used %s of a %s limit (%s), above the threshold %g",
      FormatBytes(m->used), FormatBytes(m->limit), m->source, threshold);
  rpc::ErrorInfo death;
  death.set_kind(rpc::ErrorInfo::OUT_OF_MEMORY);
  death.set_type("OutOfMemoryError");
  death.set_message(absl::StrCat(
      "the memory monitor of node ", options_.node_id.Hex(), " (",
      options_.host, ":", options_.port, ") killed its worker: ", figures));
  const KillCandidate& v = candidates[*victim];
  spdlog::warn("memory monitor: {}; killing worker {} (lease {}, {}{}, {})",
               figures, v.worker.Hex(), lease_id.Hex(),
               v.actor ? "actor" : "task", v.retriable ? ", retriable" : "",
               FormatBytes(v.memory));
  RecordDeath(lease_id, std::move(death));
  memory_kills_.Increment();
  ReleaseLease(lease_id, /*kill_worker=*/true);
}

void NodeManager::RecordDeath(const LeaseId& lease, rpc::ErrorInfo death) {
  if (deaths_.emplace(lease, std::move(death)).second) {
    death_order_.push_back(lease);
  }
  while (death_order_.size() > kMaxDeaths) {
    deaths_.erase(death_order_.front());
    death_order_.pop_front();
  }
}

}  // namespace loom::raylet
