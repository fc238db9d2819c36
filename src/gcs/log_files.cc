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
  std::vector<std::string> ids;
  if (req.node_id().empty()) {
    for (const NodeState& alive : nodes_.alive()) ids.push_back(alive.node_id);
  } else {
    const rpc::NodeInfo* node = nodes_.Find(req.node_id());
    if (node == nullptr || !node->alive()) {
      return done(absl::NotFoundError(absl::StrCat(
          "no alive node ", HexEncode(req.node_id()), " (see `loom status`)")));
    }
    ids.push_back(req.node_id());
  }
  ListLogsOf(ids, reply, std::move(done));
}

void GcsServer::ListLogsOf(const std::vector<std::string>& node_ids,
                           rpc::ListLogsReply* reply, Done done) {
  std::vector<std::string> raylets;
  for (const std::string& id : node_ids) {
    const rpc::NodeInfo* node = nodes_.Find(id);
    if (node == nullptr || !node->alive()) continue;
    rpc::NodeLogFiles* entry = reply->add_nodes();
    entry->set_node_id(id);
    entry->set_host(node->host());
    raylets.push_back(RayletAddress(*node));
  }
  CallPeers<rpc::Raylet, rpc::ListLogFilesReply>(
      clients_, log_reads_, loop_, raylets,
      std::vector<rpc::ListLogFilesRequest>(raylets.size()), kLogCallMs,
      &rpc::Raylet::Stub::PrepareAsyncListLogFiles, "",
      [reply, done](std::vector<rpc::ListLogFilesReply> files,
                    std::vector<std::string> errors) {
        for (size_t i = 0; i < files.size(); ++i) {
          rpc::NodeLogFiles* entry = reply->mutable_nodes(i);
          if (errors[i].empty()) {
            entry->mutable_files()->Swap(files[i].mutable_files());
          } else {
            entry->set_error(errors[i]);
          }
        }
        done(absl::OkStatus());
      });
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
      kLogCallMs, &rpc::Raylet::Stub::PrepareAsyncReadLogFile,
      [reply, done](const grpc::Status& s, rpc::ReadLogFileReply read) {
        if (s.ok()) reply->mutable_read()->Swap(&read);
        done(rpc::ToAbsl(s));
      });
}

}  // namespace loom::gcs
