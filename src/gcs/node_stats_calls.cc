// The dashboard's view of nodes at the head: each node's GetNodeStats
// (workers, store, the machine), asked of its raylet, all at once.
#include <memory>

#include "absl/strings/str_cat.h"
#include "proto/raylet.grpc.pb.h"
#include "src/common/rpc.h"
#include "src/common/wire.h"
#include "src/gcs/gcs_server.h"
#include "src/gcs/raylet_call.h"

namespace loom::gcs {
namespace {

constexpr int64_t kStatsCallMs = 5000;

}  // namespace

void GcsServer::AskNodeStats(const std::vector<std::string>& node_ids,
                             std::function<void(NodeStatsReplies)> done) {
  auto out = std::make_shared<NodeStatsReplies>();
  out->stats.resize(node_ids.size());
  out->errors.resize(node_ids.size());
  auto pending = std::make_shared<int>(1);  // one for the loop below
  auto finish_one = [out, pending, done] {
    if (--*pending == 0) done(std::move(*out));
  };
  for (size_t i = 0; i < node_ids.size(); ++i) {
    out->stats[i].mutable_node()->set_node_id(node_ids[i]);
    const rpc::NodeInfo* node = nodes_.Find(node_ids[i]);
    if (node == nullptr || !node->alive()) {
      out->errors[i] = "not alive";
      continue;
    }
    ++*pending;
    CallRaylet<rpc::GetNodeStatsReply>(
        clients_, log_reads_, loop_, RayletAddress(*node),
        rpc::GetNodeStatsRequest(), kStatsCallMs,
        [](auto* async, auto* ctx, auto* req, auto* reply, auto cb) {
          async->GetNodeStats(ctx, req, reply, std::move(cb));
        },
        [out, finish_one, i](const grpc::Status& s,
                             rpc::GetNodeStatsReply reply) {
          if (s.ok()) {
            out->stats[i] = std::move(reply);
          } else {
            out->errors[i] = s.error_message();
          }
          finish_one();
        });
  }
  finish_one();
}

}  // namespace loom::gcs
