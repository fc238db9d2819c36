// scheduler/node_resources.h
//
// NodeResources: one node's total and available resources. Each GPU is an
// instance of capacity 1.0: a fractional request packs onto the fullest GPU
// that still fits it, a whole request takes whole free GPUs, and the
// allocation names the GPU ids it holds. GPU memory (gpu_memory, bytes) is
// accounted per GPU: a demand naming it takes that much from one GPU that
// has it unreserved (and at most one GPU).
//
//   NodeResources node(*ResourceSet::FromMap({{"CPU", 4}, {"GPU", 2}}));
//   auto alloc = node.Acquire(*ResourceSet::FromMap({{"GPU", 0.25}}));
//   // alloc->gpu_ids == {0}
//   node.Release(*alloc);
#ifndef LOOM_SCHEDULER_NODE_RESOURCES_H_
#define LOOM_SCHEDULER_NODE_RESOURCES_H_

#include <optional>
#include <vector>

#include "scheduler/resource_set.h"

namespace loom {

struct Allocation {
  ResourceSet resources;
  std::vector<int> gpu_ids;
  std::vector<FixedPoint> gpu_amounts;  // per id in gpu_ids
  FixedPoint gpu_memory;                // taken from gpu_ids[0]
};

// Not thread-safe: owned by the raylet's event loop.
class NodeResources {
 public:
  NodeResources() = default;
  explicit NodeResources(const ResourceSet& total);

  // Could this node ever run the demand (against its totals)?
  bool IsFeasible(const ResourceSet& demand) const;
  // Could it run the demand now?
  bool CanFit(const ResourceSet& demand) const;
  // Takes the demand, or nothing when it does not fit now.
  std::optional<Allocation> Acquire(const ResourceSet& demand);
  void Release(const Allocation& allocation);

  // CPU lent back by a worker blocked in Get, and taken again on resume
  // (available may then dip below zero until the lease ends).
  void Lend(const ResourceSet& resources) { available_.Add(resources); }
  void Reclaim(const ResourceSet& resources) { available_.Subtract(resources); }

  // Resources that appear or go (placement group bundles); the caller has
  // stopped what used them first.
  void AddCapacity(const ResourceSet& r) {
    total_.Add(r);
    available_.Add(r);
  }
  void RemoveCapacity(const ResourceSet& r) {
    total_.Subtract(r);
    available_.Subtract(r);
  }

  const ResourceSet& total() const { return total_; }
  const ResourceSet& available() const { return available_; }
  const std::vector<FixedPoint>& gpu_available() const { return gpus_; }

 private:
  std::optional<std::vector<int>> PickGpus(FixedPoint demand,
                                           FixedPoint memory) const;

  ResourceSet total_;
  ResourceSet available_;
  std::vector<FixedPoint> gpus_;        // available capacity per GPU
  std::vector<FixedPoint> gpu_memory_;  // unreserved bytes per GPU
  FixedPoint gpu_memory_each_;          // each GPU's total bytes
};

}  // namespace loom

#endif  // LOOM_SCHEDULER_NODE_RESOURCES_H_
