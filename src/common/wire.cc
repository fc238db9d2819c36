#include "src/common/wire.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <map>

#include "absl/strings/str_cat.h"

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

absl::StatusOr<std::map<std::string, double>> ParseResourcesJson(
    const std::string& json) {
  std::map<std::string, double> out;
  if (json.empty()) return out;
  google::protobuf::Struct s;
  auto status = google::protobuf::util::JsonStringToMessage(json, &s);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("resources must be a JSON object like {\"GPU\": 1}: ",
                     status.ToString()));
  }
  for (const auto& [k, v] : s.fields()) {
    if (!v.has_number_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("resource '", k, "' must be a number"));
    }
    out[k] = v.number_value();
  }
  return out;
}

}  // namespace loom
