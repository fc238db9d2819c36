// `loom list actors`, `loom list nodes` and `loom list placement-groups`.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "proto/gcs.grpc.pb.h"
#include "src/cli/commands.h"
#include "src/common/ids.h"
#include "src/common/rpc.h"
#include "src/common/wire.h"

namespace loom::cli {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "loom: %s\n", message.c_str());
  return 1;
}

const char* StateName(rpc::ActorInfo::State s) {
  switch (s) {
    case rpc::ActorInfo::PENDING:
      return "PENDING";
    case rpc::ActorInfo::ALIVE:
      return "ALIVE";
    case rpc::ActorInfo::RESTARTING:
      return "RESTARTING";
    case rpc::ActorInfo::DEAD:
      return "DEAD";
    default:
      return "?";
  }
}

int ListActors(const std::string& addr) {
  auto stub = rpc::Gcs::NewStub(rpc::MakeChannel(addr));
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 5000);
  rpc::ListActorsReply reply;
  grpc::Status s = stub->ListActors(&ctx, rpc::ListActorsRequest(), &reply);
  if (!s.ok()) {
    return Fail("cannot reach the head at " + addr + ": " + s.error_message());
  }
  std::printf("%-32s  %-20s  %-16s  %-10s  %-12s  %-7s  %s\n", "ACTOR_ID",
              "CLASS", "NAME", "STATE", "NODE", "PID", "RESTARTS");
  for (const auto& a : reply.actors()) {
    std::string name =
        a.name().empty()
            ? "-"
            : (a.ns().empty() ? a.name() : a.ns() + "/" + a.name());
    std::printf("%-32s  %-20s  %-16s  %-10s  %-12s  %-7lld  %d\n",
                HexEncode(a.actor_id()).c_str(), a.class_name().c_str(),
                name.c_str(), StateName(a.state()),
                a.node_id().empty()
                    ? "-"
                    : HexEncode(a.node_id()).substr(0, 12).c_str(),
                static_cast<long long>(a.pid()), a.num_restarts());
    if (a.state() == rpc::ActorInfo::DEAD && !a.death_cause().empty()) {
      std::printf("    died: %s\n", a.death_cause().c_str());
    }
  }
  return 0;
}

int ListNodes(const std::string& addr) {
  auto status = FetchStatus(addr);
  if (!status.ok()) return Fail(std::string(status.status().message()));
  std::printf("%-32s  %-22s  %-6s  %-8s  %s\n", "NODE_ID", "RAYLET", "STATE",
              "PID", "RESOURCES (available / total)");
  for (const auto& n : status->nodes()) {
    auto total = ResourcesFromProto(n.total());
    auto available = ResourcesFromProto(n.available());
    std::printf("%-32s  %-22s  %-6s  %-8lld  %s / %s\n",
                HexEncode(n.node_id()).c_str(),
                absl::StrCat(n.host(), ":", n.raylet_port()).c_str(),
                n.alive() ? "ALIVE" : "DEAD", static_cast<long long>(n.pid()),
                available.ok() ? available->ToString().c_str() : "?",
                total.ok() ? total->ToString().c_str() : "?");
  }
  return 0;
}

int ListPlacementGroups(const std::string& addr) {
  auto stub = rpc::Gcs::NewStub(rpc::MakeChannel(addr));
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 5000);
  rpc::ListPlacementGroupsReply reply;
  grpc::Status s = stub->ListPlacementGroups(
      &ctx, rpc::ListPlacementGroupsRequest(), &reply);
  if (!s.ok()) {
    return Fail("cannot reach the head at " + addr + ": " + s.error_message());
  }
  std::printf("%-32s  %-12s  %-13s  %-10s  %s\n", "PLACEMENT_GROUP_ID", "NAME",
              "STRATEGY", "STATE", "BUNDLES (node)");
  for (const auto& g : reply.groups()) {
    std::string bundles;
    for (int i = 0; i < g.bundles_size(); ++i) {
      auto r = ResourcesFromProto(g.bundles(i));
      absl::StrAppend(&bundles, i ? "  " : "", r.ok() ? r->ToString() : "?");
      if (i < g.bundle_nodes_size()) {
        absl::StrAppend(&bundles, " (",
                        HexEncode(g.bundle_nodes(i)).substr(0, 12), ")");
      }
    }
    std::printf("%-32s  %-12s  %-13s  %-10s  %s\n",
                HexEncode(g.pg_id()).c_str(),
                g.name().empty() ? "-" : g.name().c_str(),
                rpc::PlacementGroupInfo::Strategy_Name(g.strategy()).c_str(),
                rpc::PlacementGroupInfo::State_Name(g.state()).c_str(),
                bundles.c_str());
    if (!g.message().empty()) std::printf("    %s\n", g.message().c_str());
  }
  return 0;
}

}  // namespace

int List(const std::string& what, const std::string& session_root,
         const std::string& address) {
  auto addr = HeadAddress(session_root, address);
  if (!addr.ok()) return Fail(std::string(addr.status().message()));
  if (what == "actors") return ListActors(*addr);
  if (what == "placement-groups") return ListPlacementGroups(*addr);
  return ListNodes(*addr);
}

}  // namespace loom::cli
