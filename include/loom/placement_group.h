// include/loom/placement_group.h
//
// Placement groups: bundles of resources reserved together, all or none,
// on nodes chosen by a strategy; tasks and actors then run inside a bundle.
//
//   auto pg = loom::CreatePlacementGroup({{{"CPU", 1}}, {{"CPU", 1}}},
//                                        loom::PlacementStrategy::kStrictSpread);
//   pg.Wait(30000);                                 // true once reserved
//   loom::Task(Train).SetPlacementGroup(pg, 0).Remote(shard);
//   loom::RemovePlacementGroup(pg);                 // stops what runs in it
#ifndef LOOM_PLACEMENT_GROUP_H_
#define LOOM_PLACEMENT_GROUP_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace loom {

// PACK: as few nodes as fit; SPREAD: as many as fit; the STRICT forms
// insist (one node; one node per bundle) or the group is infeasible.
enum class PlacementStrategy { kPack, kSpread, kStrictPack, kStrictSpread };

class PlacementGroup {
 public:
  PlacementGroup(std::string id_hex, int bundle_count)
      : id_(std::move(id_hex)), bundle_count_(bundle_count) {}
  const std::string& id() const { return id_; }  // hex
  int bundle_count() const { return bundle_count_; }
  // True once every bundle is reserved; false when timeout_ms passes first.
  // Throws InfeasibleError when no nodes can hold the group.
  bool Wait(int64_t timeout_ms) const;

 private:
  std::string id_;
  int bundle_count_;
};

using Bundle = std::map<std::string, double>;

// Throws loom::Error for bad bundles (none, empty, negative quantities).
PlacementGroup CreatePlacementGroup(
    const std::vector<Bundle>& bundles,
    PlacementStrategy strategy = PlacementStrategy::kPack,
    const std::string& name = "");
void RemovePlacementGroup(const PlacementGroup& group);

namespace internal {
// A demand inside bundle `index` (-1: any) of the group: each resource
// under the bundle's name, and no CPU outside it.
std::map<std::string, double> BundleDemand(
    const std::map<std::string, double>& resources, const std::string& pg_hex,
    int index);
}  // namespace internal

}  // namespace loom

#endif  // LOOM_PLACEMENT_GROUP_H_
