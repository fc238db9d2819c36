#include "src/common/wire.h"

#include <map>

namespace loom {

absl::StatusOr<ResourceSet> ResourcesFromProto(const rpc::Resources& proto) {
  std::map<std::string, double> m(proto.quantities().begin(),
                                  proto.quantities().end());
  return ResourceSet::FromMap(m);
}

rpc::Resources ResourcesToProto(const ResourceSet& set) {
  rpc::Resources proto;
  for (const auto& [name, qty] : set.quantities()) {
    (*proto.mutable_quantities())[name] = qty.ToDouble();
  }
  return proto;
}

std::string FormatResources(const rpc::Resources& proto) {
  auto set = ResourcesFromProto(proto);
  return set.ok() ? set->ToString() : "{invalid}";
}

}  // namespace loom
