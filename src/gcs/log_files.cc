// `loom logs` at the head: a node's log files, listed and read by asking
// its raylet, so that a client that reaches the head reads any node's.
#include "absl/strings/str_cat.h"
#include "proto/raylet.grpc.pb.h"
#include "src/common/rpc.h"
#include "src/common/wire.h"
#include "src/gcs/gcs_server.h"
#include "src/gcs/peer_call.h"

namespace loom::gcs {
namespace {

constexpr int64_t kLogCallMs = 10000;

}  // namespace

void GcsServer::HandleListLogs(const rpc::ListLogsRequest& req,
                               rpc::ListLogsReply* reply, Done done) {
  std::vector<rpc::NodeInfo> nodes;
  for (const NodeState& alive : nodes_.alive()) {
    if (!req.node_id().empty() && alive.node_id != req.node_id()) continue;
    nodes.push_back(*nodes_.Find(alive.node_id));
  }
  if (!req.node_id().empty() && nodes.empty()) {
    return done(absl::NotFoundError(absl::StrCat(
        "no alive node ", HexEncode(req.node_id()), " (see `loom status`)")));
  }
  auto pending = std::make_shared<int>(static_cast<int>(nodes.size()));
  if (nodes.empty()) return done(absl::OkStatus());
  for (size_t i = 0; i < nodes.size(); ++i) {
    rpc::NodeLogFiles* entry = reply->add_nodes();
    entry->set_node_id(nodes[i].node_id());
    entry->set_host(nodes[i].host());
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    CallPeer<rpc::Raylet, rpc::ListLogFilesReply>(
        clients_, log_reads_, loop_, RayletAddress(nodes[i]),
        rpc::ListLogFilesRequest(), kLogCallMs,
        [](auto* async, auto* ctx, auto* req, auto* out, auto cb) {
          async->ListLogFiles(ctx, req, out, std::move(cb));
        },
        [reply, pending, done, i](const grpc::Status& s,
                                  rpc::ListLogFilesReply files) {
          rpc::NodeLogFiles* entry = reply->mutable_nodes(i);
          if (s.ok()) {
            entry->mutable_files()->Swap(files.mutable_files());
          } else {
            entry->set_error(s.error_message());
          }
          if (--*pending == 0) done(absl::OkStatus());
        });
  }
}

void GcsServer::HandleReadLog(const rpc::ReadLogRequest& req,
                              rpc::ReadLogReply* reply, Done done) {
  auto node = ParseId<NodeId>(req.node_id(), "node_id");
  if (!node.ok()) return done(node.status());
  std::optional<rpc::NodeInfo> target;
  const rpc::NodeInfo* found = nodes_.Find(req.node_id());
  if (found && found->alive()) target = *found;
  if (!target) {
    return done(absl::NotFoundError(
        absl::StrCat("no alive node ", node->Hex(), " (see `loom status`)")));
  }
  CallPeer<rpc::Raylet, rpc::ReadLogFileReply>(
      clients_, log_reads_, loop_, RayletAddress(*target), req.read(),
      kLogCallMs,
      [](auto* async, auto* ctx, auto* ask, auto* out, auto cb) {
        async->ReadLogFile(ctx, ask, out, std::move(cb));
      },
      [reply, done](const grpc::Status& s, rpc::ReadLogFileReply read) {
        if (s.ok()) reply->mutable_read()->Swap(&read);
        done(rpc::ToAbsl(s));
      });
}

}  // namespace loom::gcs
