// `loom logs`: the log files of every node, and one file's contents (its
// last lines, and new lines as they come), read through the head, which
// asks the node's raylet.
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proto/gcs.grpc.pb.h"
#include "src/cli/commands.h"
#include "src/common/ids.h"
#include "src/common/rpc.h"

namespace loom::cli {
namespace {

constexpr int64_t kChunk = 1 << 20;
// --tail reads back at most this much to find its lines.
constexpr int64_t kMaxTailBytes = 64 << 20;

int Fail(const std::string& message) {
  std::fprintf(stderr, "loom: %s\n", message.c_str());
  return 1;
}

absl::StatusOr<rpc::ListLogsReply> ListLogs(rpc::Gcs::Stub* stub) {
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 15000);
  rpc::ListLogsReply reply;
  grpc::Status s = stub->ListLogs(&ctx, rpc::ListLogsRequest(), &reply);
  if (!s.ok()) return rpc::ToAbsl(s);
  return reply;
}

absl::StatusOr<rpc::ReadLogFileReply> Read(rpc::Gcs::Stub* stub,
                                           const std::string& node,
                                           const std::string& file,
                                           int64_t offset) {
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 15000);
  rpc::ReadLogRequest req;
  req.set_node_id(node);
  req.mutable_read()->set_name(file);
  req.mutable_read()->set_offset(offset);
  req.mutable_read()->set_max_bytes(kChunk);
  rpc::ReadLogReply reply;
  grpc::Status s = stub->ReadLog(&ctx, req, &reply);
  if (!s.ok()) return rpc::ToAbsl(s);
  return reply.read();
}

int PrintList(const rpc::ListLogsReply& logs) {
  for (const auto& n : logs.nodes()) {
    std::printf("node %s (%s)%s\n", HexEncode(n.node_id()).c_str(),
                n.host().c_str(),
                n.error().empty() ? ":" : (": " + n.error()).c_str());
    for (const auto& f : n.files()) {
      std::printf("  %12lld  %s\n", static_cast<long long>(f.size()),
                  f.name().c_str());
    }
  }
  return 0;
}

// The node to read `file` on: the one named (a node id or a prefix of its
// hex, or an IP), else the only node that has the file.
absl::StatusOr<std::string> PickNode(const rpc::ListLogsReply& logs,
                                     const LogsArgs& args) {
  std::vector<const rpc::NodeLogFiles*> matches;
  for (const auto& n : logs.nodes()) {
    std::string hex = HexEncode(n.node_id());
    if (!args.node_id.empty() && !absl::StartsWith(hex, args.node_id)) continue;
    if (!args.node_ip.empty() && n.host() != args.node_ip) continue;
    bool has =
        std::any_of(n.files().begin(), n.files().end(),
                    [&](const auto& f) { return f.name() == args.file; });
    if (has || !args.node_id.empty() || !args.node_ip.empty()) {
      matches.push_back(&n);
    }
  }
  if (matches.size() == 1) return matches[0]->node_id();
  if (matches.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no node ",
                     args.node_id.empty() && args.node_ip.empty()
                         ? "has a log file '" + args.file + "'"
                         : "matches --node-id/--node-ip",
                     " (`loom logs` lists them)"));
  }
  std::string which;
  for (const auto* n : matches) {
    absl::StrAppend(&which, " ", HexEncode(n->node_id()), " (", n->host(), ")");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("several nodes match; choose one with --node-id:", which));
}

// Where the last `lines` lines start (reading back in chunks).
absl::StatusOr<int64_t> TailStart(rpc::Gcs::Stub* stub, const std::string& node,
                                  const std::string& file, int64_t lines,
                                  int64_t size) {
  int64_t end = size;
  int64_t found = 0;
  while (end > 0 && size - end < kMaxTailBytes) {
    int64_t from = std::max<int64_t>(0, end - kChunk);
    auto chunk = Read(stub, node, file, from);
    if (!chunk.ok()) return chunk.status();
    const std::string& d = chunk->data();
    int64_t n = std::min<int64_t>(end - from, d.size());
    for (int64_t i = n - 1; i >= 0; --i) {
      // A newline ending the file does not start a line.
      if (d[i] == '\n' && from + i != size - 1 && ++found > lines - 1) {
        return from + i + 1;
      }
    }
    end = from;
  }
  return end;
}

}  // namespace

int Logs(const LogsArgs& args) {
  auto addr = HeadAddress(args.session_root, args.address);
  if (!addr.ok()) return Fail(std::string(addr.status().message()));
  auto stub = rpc::Gcs::NewStub(rpc::MakeChannel(*addr));
  auto logs = ListLogs(stub.get());
  if (!logs.ok()) {
    return Fail(absl::StrCat("cannot list logs through the head at ", *addr,
                             ": ", logs.status().message()));
  }
  if (args.file.empty()) return PrintList(*logs);
  auto node = PickNode(*logs, args);
  if (!node.ok()) return Fail(std::string(node.status().message()));
  auto first = Read(stub.get(), *node, args.file, 0);
  if (!first.ok()) return Fail(std::string(first.status().message()));
  int64_t offset = 0;
  if (args.tail >= 0) {
    auto start = args.tail == 0 ? absl::StatusOr<int64_t>(first->size())
                                : TailStart(stub.get(), *node, args.file,
                                            args.tail, first->size());
    if (!start.ok()) return Fail(std::string(start.status().message()));
    offset = *start;
  }
  while (true) {
    auto chunk = Read(stub.get(), *node, args.file, offset);
    if (!chunk.ok()) return Fail(std::string(chunk.status().message()));
    if (chunk->size() < offset) {
      offset = 0;  // truncated or replaced: from its start again
      continue;
    }
    std::fwrite(chunk->data().data(), 1, chunk->data().size(), stdout);
    offset = chunk->offset() + static_cast<int64_t>(chunk->data().size());
    if (offset < chunk->size()) continue;  // more to read now
    std::fflush(stdout);
    if (!args.follow) return 0;
    usleep(500 * 1000);
  }
}

}  // namespace loom::cli
