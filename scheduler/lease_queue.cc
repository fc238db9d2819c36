#include "scheduler/lease_queue.h"

#include "absl/strings/str_cat.h"

namespace loom {

Placement Place(const ResourceSet& demand, const NodeResources& node,
                const std::vector<RemoteNode>& others, bool allow_spillback) {
  if (node.CanFit(demand)) return {Placement::kHere};
  if (allow_spillback) {
    const RemoteNode* best = nullptr;
    for (const RemoteNode& r : others) {
      if (!r.available.Contains(demand)) continue;
      if (best == nullptr ||
          r.available.Get(kCpu) > best->available.Get(kCpu)) {
        best = &r;
      }
    }
    if (best) return {Placement::kRemote, best};
  }
  if (node.IsFeasible(demand)) return {Placement::kQueue};
  if (allow_spillback) {
    for (const RemoteNode& r : others) {
      if (r.total.Contains(demand)) return {Placement::kRemote, &r};
    }
  }
  return {Placement::kNowhere};
}

void LeaseQueue::Add(uint64_t handle, ResourceSet demand, bool allow_spillback,
                     absl::Time now) {
  entries_.push_back(Entry{handle, std::move(demand), allow_spillback});
}

bool LeaseQueue::Remove(uint64_t handle) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->handle == handle) {
      entries_.erase(it);
      return true;
    }
  }
  return false;
}

std::vector<LeaseDecision> LeaseQueue::Schedule(
    absl::Time now, NodeResources& node,
    const std::vector<RemoteNode>& others) {
  std::vector<LeaseDecision> out;
  for (auto it = entries_.begin(); it != entries_.end();) {
    Placement p = Place(it->demand, node, others, it->allow_spillback);
    LeaseDecision d{LeaseDecision::kGrant, it->handle};
    bool done = true;
    switch (p.kind) {
      case Placement::kHere: {
        auto alloc = node.Acquire(it->demand);
        if (!alloc) {  // CanFit said yes; keep waiting if that changed
          done = false;
          break;
        }
        d.allocation = std::move(*alloc);
        break;
      }
      case Placement::kRemote:
        d.kind = LeaseDecision::kSpillback;
        d.target = p.target;
        break;
      case Placement::kQueue:
        it->infeasible_since = absl::InfiniteFuture();
        done = false;
        break;
      case Placement::kNowhere:
        if (it->infeasible_since == absl::InfiniteFuture()) {
          it->infeasible_since = now;
        }
        if (now - it->infeasible_since < options_.infeasible_grace) {
          done = false;
          break;
        }
        d.kind = LeaseDecision::kInfeasible;
        d.message = absl::StrCat(
            "infeasible: no node in the cluster can satisfy the demand ",
            it->demand.ToString(), " (waited ",
            absl::FormatDuration(options_.infeasible_grace),
            " for a node that fits to join)");
        break;
    }
    if (done) {
      out.push_back(std::move(d));
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

std::vector<ResourceSet> LeaseQueue::PendingDemands() const {
  std::vector<ResourceSet> out;
  for (const Entry& e : entries_) {
    if (e.infeasible_since == absl::InfiniteFuture()) out.push_back(e.demand);
  }
  return out;
}

std::vector<ResourceSet> LeaseQueue::InfeasibleDemands() const {
  std::vector<ResourceSet> out;
  for (const Entry& e : entries_) {
    if (e.infeasible_since != absl::InfiniteFuture()) out.push_back(e.demand);
  }
  return out;
}

}  // namespace loom
