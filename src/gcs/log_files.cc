// `loom logs` at the head: a node's log files, listed and read by asking
// its raylet, so that a client that reaches the head reads any node's.
#include "absl/strings/str_cat.h"
#include "proto/raylet.grpc.pb.h"
#include "src/common/rpc.h"
#include "src/common/wire.h"
#include "src/gcs/gcs_server.h"

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
  struct Call {
    rpc::Context ctx;
    rpc::ListLogFilesRequest req;
    rpc::ListLogFilesReply reply;
  };
  auto pending = std::make_shared<int>(static_cast<int>(nodes.size()));
  if (nodes.empty()) return done(absl::OkStatus());
  for (size_t i = 0; i < nodes.size(); ++i) {
    rpc::NodeLogFiles* entry = reply->add_nodes();
    entry->set_node_id(nodes[i].node_id());
    entry->set_host(nodes[i].host());
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto* call = new Call;
    rpc::SetTimeout(&call->ctx, kLogCallMs);
    auto finish = [this, reply, pending, done, i](const grpc::Status& s,
                                                  Call* call) {
      loop_.Post([reply, pending, done, i, s, files = call->reply] {
        rpc::NodeLogFiles* entry = reply->mutable_nodes(i);
        if (s.ok()) {
          *entry->mutable_files() = files.files();
        } else {
          entry->set_error(s.error_message());
        }
        if (--*pending == 0) done(absl::OkStatus());
      });
      log_reads_.Finish(&call->ctx);
      delete call;
    };
    if (!log_reads_.Start(&call->ctx)) {  // shutting down
      finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "head stopping"),
             call);
      continue;
    }
    clients_.Stub<rpc::Raylet>(RayletAddress(nodes[i]))
        ->async()
        ->ListLogFiles(&call->ctx, &call->req, &call->reply,
                       [finish, call](grpc::Status s) { finish(s, call); });
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
  struct Call {
    rpc::Context ctx;
    rpc::ReadLogFileRequest req;
    rpc::ReadLogFileReply reply;
  };
  auto* call = new Call;
  call->req = req.read();
  rpc::SetTimeout(&call->ctx, kLogCallMs);
  if (!log_reads_.Start(&call->ctx)) {
    delete call;
    return done(absl::UnavailableError("the head is stopping"));
  }
  clients_.Stub<rpc::Raylet>(RayletAddress(*target))
      ->async()
      ->ReadLogFile(&call->ctx, &call->req, &call->reply,
                    [this, call, reply, done](grpc::Status s) {
                      if (s.ok()) reply->mutable_read()->Swap(&call->reply);
                      log_reads_.Finish(&call->ctx);
                      delete call;
                      done(rpc::ToAbsl(s));
                    });
}

}  // namespace loom::gcs
