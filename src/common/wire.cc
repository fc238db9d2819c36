#include "src/common/wire.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace loom {

absl::StatusOr<ResourceSet> ResourcesFromProto(const rpc::Resources& proto) {
  std::map<std::string, double> m(proto.quantities().begin(),
                                  proto.quantities().end());
  return ResourceSet::FromMap(m);
}

std::string HostPort(const rpc::Address& address) {
  return absl::StrCat(address.host(), ":", address.port());
}

std::string RayletAddress(const rpc::NodeInfo& node) {
  return absl::StrCat(node.host(), ":", node.raylet_port());
}

bool IsPlainName(absl::string_view s, size_t max_size) {
  if (s.empty() || s.size() > max_size || s[0] == '.') return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
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

absl::StatusOr<Strategy> StrategyFromProto(const rpc::SchedulingStrategy& s) {
  Strategy out;
  switch (s.kind()) {
    case rpc::SchedulingStrategy::DEFAULT:
      break;
    case rpc::SchedulingStrategy::SPREAD:
      out.kind = Strategy::kSpread;
      break;
    case rpc::SchedulingStrategy::NODE_AFFINITY: {
      auto node = ParseId<NodeId>(s.node_id(), "strategy.node_id");
      if (!node.ok()) return node.status();
      out.kind = Strategy::kNodeAffinity;
      out.node_id = s.node_id();
      out.soft = s.soft();
      break;
    }
    default:
      return absl::InvalidArgumentError("unknown scheduling strategy");
  }
  if (s.label_selector_size() > 64) {
    return absl::InvalidArgumentError("label_selector too long");
  }
  for (const auto& [k, v] : s.label_selector()) out.labels[k] = v;
  return out;
}

}  // namespace loom
