#include "scheduler/lease_queue.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace loom {

bool LabelsMatch(const std::map<std::string, std::string>& selector,
                 const std::map<std::string, std::string>& labels) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

double Utilization(const ResourceSet& total, const ResourceSet& available,
                   const ResourceSet& demand) {
  double worst = 0;
  bool any = false;
  for (const auto& [name, qty] : demand.ToMap()) {
    double t = total.Get(name).ToDouble();
    if (qty <= 0 || t <= 0) continue;
    any = true;
    worst = std::max(worst, 1.0 - available.Get(name).ToDouble() / t);
  }
  if (!any) {
    double t = total.Get(kCpu).ToDouble();
    if (t > 0) worst = 1.0 - available.Get(kCpu).ToDouble() / t;
  }
  return worst;
}

namespace {

// The default policy over the nodes `eligible` admits.
template <typename Eligible>
Placement PlaceDefault(const ResourceSet& demand, const NodeResources& node,
                       const std::vector<RemoteNode>& others,
                       bool allow_spillback, bool local_ok, Eligible eligible) {
  // Hybrid: pack here while this node is below the threshold; above it,
  // the least utilized node that fits, here included.
  bool fits_here = local_ok && node.CanFit(demand);
  double here = Utilization(node.total(), node.available(), demand);
  if (fits_here && (!allow_spillback || here < kPackThreshold)) {
    return {Placement::kHere};
  }
  if (allow_spillback) {
    const RemoteNode* best = nullptr;
    double best_use = 2;
    for (const RemoteNode& r : others) {
      if (!eligible(r) || !r.available.Contains(demand)) continue;
      double use = Utilization(r.total, r.available, demand);
      if (use < best_use) {
        best = &r;
        best_use = use;
      }
    }
    if (best && (!fits_here || best_use < here)) {
      return {Placement::kRemote, best};
    }
  }
  if (fits_here) return {Placement::kHere};
  if (local_ok && node.IsFeasible(demand)) return {Placement::kQueue};
  if (allow_spillback) {
    for (const RemoteNode& r : others) {
      if (eligible(r) && r.total.Contains(demand)) {
        return {Placement::kRemote, &r};
      }
    }
  }
  return {Placement::kNowhere};
}

// Whether the demand names a placement group's bundle resource.
bool NamesGroup(const ResourceSet& demand) {
  for (const auto& [name, quantity] : demand.quantities()) {
    if (!BundleGroupHex(name).empty()) return true;
  }
  return false;
}

}  // namespace

std::string Where(const Strategy& strategy) {
  std::string out;
  for (const auto& [k, v] : strategy.labels) {
    absl::StrAppend(&out, out.empty() ? " on a node labelled " : ", ", k, "=",
                    v);
  }
  if (strategy.kind == Strategy::kNodeAffinity && !strategy.soft) {
    absl::StrAppend(&out, " on node ",
                    absl::BytesToHexString(strategy.node_id).substr(0, 12));
  }
  return out;
}

Placement Place(const ResourceSet& demand, const NodeResources& node,
                const std::vector<RemoteNode>& others, bool allow_spillback,
                const Strategy& strategy, const LocalNode& self,
                uint64_t* spread_next) {
  auto labels_ok = [&](const RemoteNode& r) {
    return LabelsMatch(strategy.labels, r.labels);
  };
  bool local_labels = LabelsMatch(strategy.labels, self.labels);
  if (strategy.kind == Strategy::kNodeAffinity) {
    bool here = strategy.node_id == self.node_id;
    const RemoteNode* target = nullptr;
    for (const RemoteNode& r : others) {
      if (r.node_id == strategy.node_id) target = &r;
    }
    if (here && local_labels) {
      if (node.CanFit(demand)) return {Placement::kHere};
      if (!strategy.soft) {
        return node.IsFeasible(demand) ? Placement{Placement::kQueue}
                                       : Placement{Placement::kNowhere};
      }
    } else if (target != nullptr && allow_spillback && labels_ok(*target)) {
      // Hard: the target queues it if it cannot run it now.
      if (!strategy.soft || target->available.Contains(demand)) {
        return {Placement::kRemote, target};
      }
      // The data's node looks busy, but this view of it may be a heartbeat
      // old: it decides, and may place the task elsewhere.
      if (strategy.locality && target->total.Contains(demand)) {
        return {Placement::kRemote, target, /*may_spill=*/true};
      }
    } else if (!strategy.soft) {
      return {Placement::kNowhere};  // that node is gone or unknown
    } else if (target == nullptr && !here && allow_spillback) {
      return {Placement::kAskHead};  // it may have just joined
    }
    // Soft, and the node cannot run it now: anywhere, as by default.
    return PlaceDefault(demand, node, others, allow_spillback, local_labels,
                        labels_ok);
  }
  if (strategy.kind == Strategy::kSpread && allow_spillback) {
    // The nodes that fit now, in a stable order; each request takes the
    // next in turn.
    std::vector<const RemoteNode*> fit;  // nullptr: this node
    if (local_labels && node.CanFit(demand)) fit.push_back(nullptr);
    for (const RemoteNode& r : others) {
      if (labels_ok(r) && r.available.Contains(demand)) fit.push_back(&r);
    }
    if (!fit.empty()) {
      std::sort(fit.begin(), fit.end(),
                [&](const RemoteNode* a, const RemoteNode* b) {
                  return (a ? a->node_id : self.node_id) <
                         (b ? b->node_id : self.node_id);
                });
      uint64_t turn = spread_next ? (*spread_next)++ : 0;
      const RemoteNode* pick = fit[turn % fit.size()];
      return pick ? Placement{Placement::kRemote, pick}
                  : Placement{Placement::kHere};
    }
  }
  return PlaceDefault(demand, node, others, allow_spillback, local_labels,
                      labels_ok);
}

void LeaseQueue::Add(uint64_t handle, ResourceSet demand, bool allow_spillback,
                     absl::Time now, Strategy strategy) {
  entries_.push_back(
      Entry{handle, std::move(demand), allow_spillback, std::move(strategy)});
}

void LeaseQueue::HeadAnswered(uint64_t handle) {
  for (Entry& e : entries_) {
    if (e.handle == handle) e.awaiting_head = false;
  }
}

void LeaseQueue::WaitForHead(uint64_t handle, absl::Time until) {
  for (Entry& e : entries_) {
    if (e.handle != handle) continue;
    e.awaiting_head = e.asked_head = false;
    e.infeasible_since = absl::InfiniteFuture();
    e.head_wait = until;
  }
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

std::vector<LeaseDecision> LeaseQueue::Schedule(absl::Time now,
                                                NodeResources& node,
                                                std::vector<RemoteNode>& others,
                                                const LocalNode& self,
                                                LeaseGate* gate) {
  std::vector<LeaseDecision> out;
  for (auto it = entries_.begin(); it != entries_.end();) {
    it->held = gate != nullptr && gate->Holds(it->handle, it->demand);
    if (it->awaiting_head || it->held) {
      ++it;
      continue;
    }
    Placement p = Place(it->demand, node, others, it->allow_spillback,
                        it->strategy, self, &spread_next_);
    if (p.kind == Placement::kAskHead && it->asked_head) {
      Strategy fallback = it->strategy;  // soft: anywhere, as by default
      fallback.kind = Strategy::kDefault;
      p = Place(it->demand, node, others, it->allow_spillback, fallback, self,
                &spread_next_);
    }
    LeaseDecision d{LeaseDecision::kGrant, it->handle};
    bool done = true;
    switch (p.kind) {
      case Placement::kAskHead:
        it->asked_head = it->awaiting_head = true;
        out.push_back(LeaseDecision{LeaseDecision::kAskHead, it->handle});
        done = false;
        break;
      case Placement::kHere: {
        auto alloc = node.Acquire(it->demand);
        if (!alloc) {  // CanFit said yes; keep waiting if that changed
          done = false;
          break;
        }
        d.allocation = std::move(*alloc);
        if (gate != nullptr) gate->Granted(it->handle, it->demand);
        break;
      }
      case Placement::kRemote: {
        d.kind = LeaseDecision::kSpillback;
        d.target = p.target;
        d.may_spill = p.may_spill;
        // Count it there now, so that a burst does not all go one way.
        auto* target = const_cast<RemoteNode*>(p.target);
        if (target->available.Contains(it->demand)) {
          target->available.Subtract(it->demand);
        }
        break;
      }
      case Placement::kQueue:
        it->infeasible_since = absl::InfiniteFuture();
        done = false;
        break;
      case Placement::kNowhere:
        if (now < it->head_wait) {
          done = false;
          break;
        }
        if (it->infeasible_since == absl::InfiniteFuture()) {
          it->infeasible_since = now;
        }
        if (now - it->infeasible_since < options_.infeasible_grace) {
          done = false;
          // A spilled request asks too when its group's bundle is not
          // here (the group is placed again, maybe elsewhere).
          if ((it->allow_spillback || NamesGroup(it->demand)) &&
              !it->asked_head) {
            it->asked_head = it->awaiting_head = true;
            out.push_back(LeaseDecision{LeaseDecision::kAskHead, it->handle});
          }
          break;
        }
        d.kind = LeaseDecision::kInfeasible;
        d.message = absl::StrCat(
            "infeasible: no node in the cluster can satisfy the demand ",
            it->demand.ToString(), Where(it->strategy), " (waited ",
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
    if (e.infeasible_since == absl::InfiniteFuture() && !e.held) {
      out.push_back(e.demand);
    }
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
