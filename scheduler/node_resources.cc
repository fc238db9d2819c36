#include "scheduler/node_resources.h"

namespace loom {

NodeResources::NodeResources(const ResourceSet& total)
    : total_(total), available_(total) {
  int64_t gpus = total.Get(kGpu).raw() / FixedPoint::kScale;
  gpus_.assign(gpus, FixedPoint::FromInt(1));
  if (gpus > 0) {
    gpu_memory_each_ = FixedPoint::FromRaw(total.Get(kGpuMemory).raw() / gpus);
    gpu_memory_.assign(gpus, gpu_memory_each_);
  }
}

bool NodeResources::IsFeasible(const ResourceSet& demand) const {
  if (!total_.Contains(demand)) return false;
  FixedPoint memory = demand.Get(kGpuMemory);
  if (memory > FixedPoint() && (memory > gpu_memory_each_ ||
                                demand.Get(kGpu) > FixedPoint::FromInt(1))) {
    return false;  // more than one GPU has, or spread over several GPUs
  }
  FixedPoint gpu = demand.Get(kGpu);
  if (gpu > FixedPoint()) {
    if (gpu < FixedPoint::FromInt(1)) return !gpus_.empty();
    return gpu.raw() / FixedPoint::kScale <= static_cast<int64_t>(gpus_.size());
  }
  return true;
}

std::optional<std::vector<int>> NodeResources::PickGpus(
    FixedPoint demand, FixedPoint memory) const {
  std::vector<int> ids;
  if (demand == FixedPoint() && memory == FixedPoint()) return ids;
  const FixedPoint one = FixedPoint::FromInt(1);
  if (demand < one) {
    // Pack: the fullest GPU that still fits (its share and its memory), so
    // whole GPUs stay free.
    int best = -1;
    for (int i = 0; i < static_cast<int>(gpus_.size()); ++i) {
      if (gpus_[i] < demand || gpu_memory_[i] < memory) continue;
      if (best < 0 || gpus_[i] < gpus_[best] ||
          (gpus_[i] == gpus_[best] && gpu_memory_[i] < gpu_memory_[best])) {
        best = i;
      }
    }
    if (best < 0) return std::nullopt;
    ids.push_back(best);
    return ids;
  }
  int64_t whole = demand.raw() / FixedPoint::kScale;
  for (int i = 0; i < static_cast<int>(gpus_.size()) &&
                  static_cast<int64_t>(ids.size()) < whole;
       ++i) {
    if (gpus_[i] == one && gpu_memory_[i] >= memory) ids.push_back(i);
  }
  if (static_cast<int64_t>(ids.size()) < whole) return std::nullopt;
  return ids;
}

bool NodeResources::CanFit(const ResourceSet& demand) const {
  return available_.Contains(demand) &&
         PickGpus(demand.Get(kGpu), demand.Get(kGpuMemory)).has_value();
}

std::optional<Allocation> NodeResources::Acquire(const ResourceSet& demand) {
  if (!available_.Contains(demand)) return std::nullopt;
  FixedPoint gpu = demand.Get(kGpu);
  FixedPoint memory = demand.Get(kGpuMemory);
  auto ids = PickGpus(gpu, memory);
  if (!ids) return std::nullopt;
  Allocation alloc;
  alloc.resources = demand;
  alloc.gpu_ids = *ids;
  if (memory > FixedPoint()) {
    gpu_memory_[(*ids)[0]] -= memory;
    alloc.gpu_memory = memory;
  }
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
  if (allocation.gpu_memory > FixedPoint()) {
    gpu_memory_[allocation.gpu_ids[0]] += allocation.gpu_memory;
  }
}

}  // namespace loom
