// src/common/wire.h
//
// Checked conversions between wire messages and Loom's own types. Every
// value that arrives on a port passes through here, so bad input becomes an
// InvalidArgument status, never a crash.
//
//   auto node = ParseId<NodeId>(request.node_id(), "node_id");
//   auto demand = ResourcesFromProto(request.resources());
#ifndef LOOM_COMMON_WIRE_H_
#define LOOM_COMMON_WIRE_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "proto/common.pb.h"
#include "scheduler/lease_queue.h"
#include "scheduler/resource_set.h"
#include "src/common/ids.h"

namespace loom {

template <typename Id>
absl::StatusOr<Id> ParseId(const std::string& binary, const char* field) {
  auto id = Id::FromBinary(binary);
  if (!id.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", id.status().message()));
  }
  return Id(*id);
}

// The head's KV namespace of uploaded working directories (zips), by name.
inline constexpr char kPackagesNamespace[] = "packages";

absl::StatusOr<ResourceSet> ResourcesFromProto(const rpc::Resources& proto);
// The scheduling policy's form of a strategy; InvalidArgument when bad.
absl::StatusOr<Strategy> StrategyFromProto(const rpc::SchedulingStrategy& s);
rpc::Resources ResourcesToProto(const ResourceSet& set);
// "host:port" of a core worker's address: how owners are named in maps,
// the store and the head's events.
std::string HostPort(const rpc::Address& address);
// "host:port" of a node's raylet.
std::string RayletAddress(const rpc::NodeInfo& node);
// Whether `s` can name a file of its own: 1..max_size letters, digits, '_',
// '-' and '.', not starting with '.' (so no '/', no "..").
bool IsPlainName(absl::string_view s, size_t max_size);
std::string FormatResources(const rpc::Resources& proto);

// Parses '{"name": qty, ...}' (the --resources flag). Quantities are checked
// later, by ResourceSet::FromMap.
absl::StatusOr<std::map<std::string, double>> ParseResourcesJson(
    const std::string& json);

}  // namespace loom

#endif  // LOOM_COMMON_WIRE_H_
