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
#include <map>
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
  std::map<std::string, std::string> labels;
};

// Where a request may and should go. DEFAULT: here while it fits, else the
// least loaded node that fits. SPREAD: the nodes that fit, in turn. Node
// affinity: that node only (hard), or first (soft). A label selector keeps
// to nodes whose labels match every entry.
struct Strategy {
  enum Kind { kDefault, kSpread, kNodeAffinity };
  Kind kind = kDefault;
  std::string node_id;  // binary; kNodeAffinity
  bool soft = false;
  // Soft affinity for data locality (the node holding the arguments): when
  // that node looks busy, it is asked to decide rather than passed over.
  bool locality = false;
  std::map<std::string, std::string> labels;
};

// Whether a node's labels match every entry of a selector.
bool LabelsMatch(const std::map<std::string, std::string>& selector,
                 const std::map<std::string, std::string>& labels);
// How busy a node is for a demand: the largest used fraction among the
// resources the demand names (CPU when it names none).
double Utilization(const ResourceSet& total, const ResourceSet& available,
                   const ResourceSet& demand);

// " on a node labelled k=v", " on node <id>": where a strategy confines a
// request (for messages).
std::string Where(const Strategy& strategy);

// This node, as the policy sees it.
struct LocalNode {
  std::string node_id;  // binary
  std::map<std::string, std::string> labels;
};

// kAskHead: no node this raylet knows can ever run the request, or its
// soft affinity names a node this raylet does not know yet; the head, which
// knows every node, is asked once, and the request waits in the queue (an
// infeasible one on its grace clock) until HeadAnswered, or WaitForHead when
// the head says a placement group's bundle it names is coming. A spilled
// request asks only for a bundle (the group may be placed elsewhere now).
struct LeaseDecision {
  enum Kind { kGrant, kSpillback, kInfeasible, kAskHead };
  Kind kind;
  uint64_t handle;
  Allocation allocation;               // kGrant
  const RemoteNode* target = nullptr;  // kSpillback
  bool may_spill = false;              // kSpillback: the target may re-place
  std::string message;                 // kInfeasible
};

// Limits beyond the node's resources (a job's quota): a request the gate
// holds stays queued, placed neither here nor elsewhere, until a later
// Schedule; the gate hears of each grant here at once, so that requests
// decided after it in the same pass see it.
class LeaseGate {
 public:
  virtual ~LeaseGate() = default;
  virtual bool Holds(uint64_t handle, const ResourceSet& demand) = 0;
  virtual void Granted(uint64_t handle, const ResourceSet& demand) = 0;
};

// Not thread-safe: owned by the raylet's event loop.
class LeaseQueue {
 public:
  struct Options {
    absl::Duration infeasible_grace = absl::Seconds(3);
  };
  explicit LeaseQueue(Options options) : options_(options) {}

  void Add(uint64_t handle, ResourceSet demand, bool allow_spillback,
           absl::Time now, Strategy strategy = {});
  bool Remove(uint64_t handle);
  // The head did not move the request: it is decided here again.
  void HeadAnswered(uint64_t handle);
  // The head says the request's placement group is being placed (or could
  // not be asked): until `until` the request waits where no node fits it,
  // off its infeasibility clock, and then asks again.
  void WaitForHead(uint64_t handle, absl::Time until);

  // Decides every queued request in arrival order. Grants take resources
  // from `node`; each request that leaves the queue is returned.
  // A request spilled to another node counts against that node's available
  // resources in `others` until the next view replaces it. A kAskHead
  // decision leaves its request queued, as does one `gate` holds.
  std::vector<LeaseDecision> Schedule(absl::Time now, NodeResources& node,
                                      std::vector<RemoteNode>& others,
                                      const LocalNode& self = {},
                                      LeaseGate* gate = nullptr);

  size_t size() const { return entries_.size(); }
  // Waiting for resources (held ones not: more nodes would not help them).
  std::vector<ResourceSet> PendingDemands() const;
  std::vector<ResourceSet> InfeasibleDemands() const;

 private:
  struct Entry {
    uint64_t handle;
    ResourceSet demand;
    bool allow_spillback;
    Strategy strategy;
    absl::Time infeasible_since = absl::InfiniteFuture();
    bool asked_head = false;
    bool awaiting_head = false;
    bool held = false;  // by the gate, at the last Schedule
    absl::Time head_wait = absl::InfinitePast();  // WaitForHead's
  };

  Options options_;
  std::list<Entry> entries_;
  uint64_t spread_next_ = 0;  // SPREAD's turn
};

// The placement of one demand, for a request that just arrived or waits.
// Default order: here if it fits now and this node is less than
// kPackThreshold utilized; else the least utilized node that fits now (here
// included); here later if this node could ever run it; a node that could
// ever run it; else nowhere.
inline constexpr double kPackThreshold = 0.5;
// kAskHead: a soft affinity's node is not in this view.
struct Placement {
  enum Kind { kHere, kRemote, kQueue, kNowhere, kAskHead };
  Kind kind;
  const RemoteNode* target = nullptr;
  bool may_spill = false;  // kRemote: the target decides again
};
Placement Place(const ResourceSet& demand, const NodeResources& node,
                const std::vector<RemoteNode>& others, bool allow_spillback,
                const Strategy& strategy = {}, const LocalNode& self = {},
                uint64_t* spread_next = nullptr);

}  // namespace loom

#endif  // LOOM_SCHEDULER_LEASE_QUEUE_H_
