// The C++ API of placement groups: calls to the head through the core
// worker's client.
#include "loom/placement_group.h"

#include "absl/strings/escaping.h"
#include "loom/errors.h"
#include "runtime/core_worker.h"
#include "runtime/raylet_client.h"
#include "scheduler/resource_set.h"

namespace loom {
namespace {

CoreWorker& Current() {
  CoreWorker* cw = GlobalCoreWorker();
  if (cw == nullptr) throw Error("loom::Init() has not been called");
  return *cw;
}

}  // namespace

PlacementGroup CreatePlacementGroup(const std::vector<Bundle>& bundles,
                                    PlacementStrategy strategy,
                                    const std::string& name) {
  rpc::PlacementGroupInfo g;
  for (const auto& b : bundles) {
    auto* r = g.add_bundles();
    for (const auto& [k, v] : b) (*r->mutable_quantities())[k] = v;
  }
  g.set_strategy(static_cast<rpc::PlacementGroupInfo::Strategy>(strategy));
  g.set_name(name);
  g.set_job_id(Current().job().Binary());
  auto id = Current().raylet_client()->CreatePlacementGroup(g);
  if (!id.ok()) throw Error(std::string(id.status().message()));
  return PlacementGroup(absl::BytesToHexString(*id),
                        static_cast<int>(bundles.size()));
}

bool PlacementGroup::Wait(int64_t timeout_ms) const {
  auto info = Current().raylet_client()->GetPlacementGroup(
      absl::HexStringToBytes(id_), true, timeout_ms);
  if (!info.ok()) {
    if (info.status().code() == absl::StatusCode::kDeadlineExceeded) {
      return false;
    }
    throw Error(std::string(info.status().message()));
  }
  if (info->state() == rpc::PlacementGroupInfo::INFEASIBLE) {
    throw InfeasibleError("placement group " + id_ + ": " + info->message());
  }
  return info->state() == rpc::PlacementGroupInfo::CREATED;
}

void RemovePlacementGroup(const PlacementGroup& group) {
  absl::Status s = Current().raylet_client()->RemovePlacementGroup(
      absl::HexStringToBytes(group.id()));
  if (!s.ok()) throw Error(std::string(s.message()));
}

namespace internal {

std::map<std::string, double> BundleDemand(
    const std::map<std::string, double>& resources, const std::string& pg_hex,
    int index) {
  std::map<std::string, double> out;
  for (const auto& [k, v] : resources) {
    if (v > 0) out[BundleResource(k, pg_hex, index)] = v;
  }
  if (out.empty()) out[BundleResource("bundle", pg_hex, index)] = 0.001;
  out[kCpu] = 0;  // named: no default CPU outside the bundle
  return out;
}

}  // namespace internal
}  // namespace loom
