#include "scheduler/node_resources.h"

namespace loom {

NodeResources::NodeResources(const ResourceSet& total)
    : total_(total), available_(total) {
  int64_t gpus = total.Get(kGpu).raw() / FixedPoint::kScale;
  gpus_.assign(gpus, FixedPoint::FromInt(1));
}

bool NodeResources::IsFeasible(const ResourceSet& demand) const {
  if (!total_.Contains(demand)) return false;
  FixedPoint gpu = demand.Get(kGpu);
  if (gpu > FixedPoint()) {
    if (gpu < FixedPoint::FromInt(1)) return !gpus_.empty();
    return gpu.raw() / FixedPoint::kScale <= static_cast<int64_t>(gpus_.size());
  }
  return true;
}

std::optional<std::vector<int>> NodeResources::PickGpus(
    FixedPoint demand) const {
  std::vector<int> ids;
  if (demand == FixedPoint()) return ids;
  const FixedPoint one = FixedPoint::FromInt(1);
  if (demand < one) {
    // Pack: the fullest GPU that still fits, so whole GPUs stay free.
    int best = -1;
    for (int i = 0; i < static_cast<int>(gpus_.size()); ++i) {
      if (gpus_[i] >= demand && (best < 0 || gpus_[i] < gpus_[best])) best = i;
    }
    if (best < 0) return std::nullopt;
    ids.push_back(best);
    return ids;
  }
  int64_t whole = demand.raw() / FixedPoint::kScale;
  for (int i = 0; i < static_cast<int>(gpus_.size()) &&
                  static_cast<int64_t>(ids.size()) < whole;
       ++i) {
    if (gpus_[i] == one) ids.push_back(i);
  }
  if (static_cast<int64_t>(ids.size()) < whole) return std::nullopt;
  return ids;
}

bool NodeResources::CanFit(const ResourceSet& demand) const {
  return available_.Contains(demand) && PickGpus(demand.Get(kGpu)).has_value();
}

std::optional<Allocation> NodeResources::Acquire(const ResourceSet& demand) {
  if (!available_.Contains(demand)) return std::nullopt;
  FixedPoint gpu = demand.Get(kGpu);
  auto ids = PickGpus(gpu);
  if (!ids) return std::nullopt;
  Allocation alloc;
  alloc.resources = demand;
  alloc.gpu_ids = *ids;
  FixedPoint each = gpu < FixedPoint::FromInt(1) ? gpu : FixedPoint::FromInt(1);
  for (int id : *ids) {
    gpus_[id] -= each;
    alloc.gpu_amounts.push_back(each);
  }
  available_.Subtract(demand);
  return alloc;
}

void NodeResources::Release(const Allocation& allocation) {
  available_.Add(allocation.resources);
  for (size_t i = 0; i < allocation.gpu_ids.size(); ++i) {
    gpus_[allocation.gpu_ids[i]] += allocation.gpu_amounts[i];
  }
}

}  // namespace loom
