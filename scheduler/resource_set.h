// scheduler/resource_set.h
//
// ResourceSet: quantities of named resources ("CPU", "GPU", "memory",
// custom), held as FixedPoint. Zero quantities are not stored.
//
//   auto need = ResourceSet::FromMap({{"CPU", 1}, {"GPU", 0.5}});  // StatusOr
//   if (available.Contains(*need)) available.Subtract(*need);
#ifndef LOOM_SCHEDULER_RESOURCE_SET_H_
#define LOOM_SCHEDULER_RESOURCE_SET_H_

#include <map>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "scheduler/fixed_point.h"

namespace loom {

inline constexpr char kCpu[] = "CPU";
inline constexpr char kGpu[] = "GPU";
inline constexpr char kMemory[] = "memory";
// A placement group bundle's resources are offered under derived names:
// "CPU_group_<index>_<pg hex>" for that bundle, "CPU_group_<pg hex>" for any
// bundle of the group (index -1).
std::string BundleResource(const std::string& name, const std::string& pg_hex,
                           int index);
// The group (its hex id) whose bundle resource `name` is; "" for a resource
// of no group.
std::string BundleGroupHex(const std::string& name);

// Bytes of GPU memory: a node's total is the sum over its GPUs; a demand is
// placed on one GPU that has that much unreserved.
inline constexpr char kGpuMemory[] = "gpu_memory";
inline constexpr double kMaxQuantity = 1e14;  // bytes of memory, too

class ResourceSet {
 public:
  ResourceSet() = default;
  // Refuses NaN, infinite, negative or absurd quantities and empty names,
  // and GPU requests above 1 that are not whole (1.5 GPUs).
  static absl::StatusOr<ResourceSet> FromMap(
      const std::map<std::string, double>& quantities);

  FixedPoint Get(const std::string& name) const;
  // The CPUs it holds: "CPU", or inside a placement group the bundle's
  // ("CPU_group_..."), whichever is more (a demand names one of them).
  double Cpus() const;
  void Set(const std::string& name, FixedPoint value);
  bool Contains(const ResourceSet& other) const;  // every quantity >=
  void Add(const ResourceSet& other);
  void Subtract(const ResourceSet& other);
  bool IsEmpty() const { return quantities_.empty(); }
  bool operator==(const ResourceSet& o) const {
    return quantities_ == o.quantities_;
  }

  std::map<std::string, double> ToMap() const;
  // Sorted and stable: "{CPU: 1, GPU: 0.5}". Also a scheduling key.
  std::string ToString() const;

  const absl::flat_hash_map<std::string, FixedPoint>& quantities() const {
    return quantities_;
  }

 private:
  absl::flat_hash_map<std::string, FixedPoint> quantities_;
};

}  // namespace loom

#endif  // LOOM_SCHEDULER_RESOURCE_SET_H_
