// scheduler/lease_queue.h
//
// LeaseQueue: the raylet's lease requests waiting for resources, and the
// policy that decides each one: grant here, spill back to another node, keep
// queued, or fail as infeasible once no node has fitted it for the grace
// period. Pure logic: time comes in as an argument.
//
//   LeaseQueue queue({.infeasible_grace = absl::Seconds(3)});
//   queue.Add(handle, demand, /*allow_spillback=*/true, clock.Now());
//   for (const LeaseDecision& d : queue.Schedule(clock.Now(), node, view)) ...
#ifndef LOOM_SCHEDULER_LEASE_QUEUE_H_
#define LOOM_SCHEDULER_LEASE_QUEUE_H_

#include <cstdint>
#include <list>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "scheduler/node_resources.h"

namespace loom {

// Another node as this node last heard of it.
struct RemoteNode {
  std::string node_id;  // binary
  std::string host;
  int port = 0;
  ResourceSet total;
  ResourceSet available;
};

struct LeaseDecision {
  enum Kind { kGrant, kSpillback, kInfeasible };
  Kind kind;
  uint64_t handle;
  Allocation allocation;               // kGrant
  const RemoteNode* target = nullptr;  // kSpillback
  std::string message;                 // kInfeasible
};

// Not thread-safe: owned by the raylet's event loop.
class LeaseQueue {
 public:
  struct Options {
    absl::Duration infeasible_grace = absl::Seconds(3);
  };
  explicit LeaseQueue(Options options) : options_(options) {}

  void Add(uint64_t handle, ResourceSet demand, bool allow_spillback,
           absl::Time now);
  bool Remove(uint64_t handle);

  // Decides every queued request in arrival order. Grants take resources
  // from `node`; each request that leaves the queue is returned.
  std::vector<LeaseDecision> Schedule(absl::Time now, NodeResources& node,
                                      const std::vector<RemoteNode>& others);

  size_t size() const { return entries_.size(); }
  std::vector<ResourceSet> PendingDemands() const;
  std::vector<ResourceSet> InfeasibleDemands() const;

 private:
  struct Entry {
    uint64_t handle;
    ResourceSet demand;
    bool allow_spillback;
    absl::Time infeasible_since = absl::InfiniteFuture();
  };

  Options options_;
  std::list<Entry> entries_;
};

// The placement of one demand, for a request that just arrived or waits.
// Order: here if it fits now; another node that fits now; here later if this
// node could ever run it; a node that could ever run it; else nowhere.
struct Placement {
  enum Kind { kHere, kRemote, kQueue, kNowhere };
  Kind kind;
  const RemoteNode* target = nullptr;
};
Placement Place(const ResourceSet& demand, const NodeResources& node,
                const std::vector<RemoteNode>& others, bool allow_spillback);

}  // namespace loom

#endif  // LOOM_SCHEDULER_LEASE_QUEUE_H_
