// The dashboard's asks at the head: each node's GetNodeStats (workers,
// store, the machine) of its raylet, and how the largest objects are
// referenced of their owners, each all at once.
#include <memory>

#include "absl/strings/str_cat.h"
#include "proto/raylet.grpc.pb.h"
#include "proto/worker.grpc.pb.h"
#include "src/common/roles.h"
#include "src/common/rpc.h"
#include "src/common/wire.h"
#include "src/gcs/gcs_server.h"
#include "src/gcs/peer_call.h"

namespace loom::gcs {
namespace {

constexpr int64_t kStatsCallMs = 5000;
constexpr int64_t kReferencesCallMs = 2000;

// An owner's address is whatever its object's creator wrote in the store:
// it is asked with a viewer's credential (enough for GetReferences), never
// with the cluster token, which would go to any address named there.
std::string OwnerAskCredential() {
  std::string token = rpc::ClusterToken();
  if (token.empty()) return "";  // a cluster without auth
  constexpr char kName[] = "head-objects-page";
  return MintCredential(token, Identity{kName, Role::kViewer, ""},
                        TokenId(kName));
}

}  // namespace

void GcsServer::AskNodeStats(const std::vector<std::string>& node_ids,
                             std::function<void(NodeStatsReplies)> done) {
  std::vector<std::string> raylets;
  for (const std::string& id : node_ids) {
    const rpc::NodeInfo* node = nodes_.Find(id);
    raylets.push_back(node != nullptr && node->alive() ? RayletAddress(*node)
                                                       : "");
  }
  CallPeers<rpc::Raylet, rpc::GetNodeStatsReply>(
      clients_, log_reads_, loop_, raylets,
      std::vector<rpc::GetNodeStatsRequest>(node_ids.size()), kStatsCallMs,
      &rpc::Raylet::Stub::PrepareAsyncGetNodeStats, "not alive",
      [node_ids, done](std::vector<rpc::GetNodeStatsReply> stats,
                       std::vector<std::string> errors) {
        for (size_t i = 0; i < stats.size(); ++i) {
          if (!errors[i].empty()) {
            stats[i].mutable_node()->set_node_id(node_ids[i]);
          }
        }
        done({std::move(stats), std::move(errors)});
      });
}

void GcsServer::AskReferences(
    const std::vector<std::pair<std::string, std::vector<std::string>>>&
        owners_ids,
    std::function<void(ReferenceReplies)> done) {
  std::vector<std::string> owners;
  std::vector<rpc::GetReferencesRequest> asks(owners_ids.size());
  for (size_t i = 0; i < owners_ids.size(); ++i) {
    owners.push_back(owners_ids[i].first);
    for (const std::string& id : owners_ids[i].second) {
      asks[i].add_object_ids(id);
    }
  }
  CallPeers<rpc::CoreWorker, rpc::GetReferencesReply>(
      clients_, log_reads_, loop_, owners, std::move(asks), kReferencesCallMs,
      &rpc::CoreWorker::Stub::PrepareAsyncGetReferences, "no owner recorded",
      [done](std::vector<rpc::GetReferencesReply> replies,
             std::vector<std::string> errors) {
        done({std::move(replies), std::move(errors)});
      },
      OwnerAskCredential());
}

}  // namespace loom::gcs
