// Log files through the head: resolving a query to files on one node, and
// reading them in chunks (whole, their tail, or following them), a
// process's output filtered from the job's shared Python files.
#include "runtime/log_reader.h"

#include <algorithm>
#include <deque>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "proto/gcs.grpc.pb.h"
#include "runtime/state_api.h"
#include "src/common/ids.h"
#include "src/common/rpc.h"

namespace loom {
namespace {

constexpr int64_t kChunk = 1 << 20;
// A tail reads back at most this much to find its lines.
constexpr int64_t kMaxTailBytes = 64 << 20;
constexpr int64_t kCallMs = 15000;

std::unique_ptr<rpc::Gcs::Stub> Stub(const std::string& head) {
  return rpc::Gcs::NewStub(rpc::MakeChannel(head));
}

absl::StatusOr<rpc::ReadLogFileReply> Read(const std::string& head,
                                           const std::string& node,
                                           const std::string& file,
                                           int64_t offset) {
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, kCallMs);
  rpc::ReadLogRequest req;
  req.set_node_id(node);
  req.mutable_read()->set_name(file);
  req.mutable_read()->set_offset(offset);
  req.mutable_read()->set_max_bytes(kChunk);
  rpc::ReadLogReply reply;
  grpc::Status s = Stub(head)->ReadLog(&ctx, req, &reply);
  if (!s.ok()) return rpc::ToAbsl(s);
  return reply.read();
}

// Where the last `lines` lines of a file of `size` bytes start.
absl::StatusOr<int64_t> TailStart(const std::string& head,
                                  const std::string& node,
                                  const std::string& file, int64_t lines,
                                  int64_t size) {
  if (lines == 0) return size;
  int64_t end = size;
  int64_t found = 0;
  while (end > 0 && size - end < kMaxTailBytes) {
    int64_t from = std::max<int64_t>(0, end - kChunk);
    auto chunk = Read(head, node, file, from);
    if (!chunk.ok()) return chunk.status();
    const std::string& d = chunk->data();
    int64_t n = std::min<int64_t>(end - from, d.size());
    for (int64_t i = n - 1; i >= 0; --i) {
      // A newline ending the file does not start a line.
      if (d[i] == '\n' && from + i != size - 1 && ++found >= lines) {
        return from + i + 1;
      }
    }
    end = from;
  }
  return end;
}

// What a worker process prints: its C++ output files, whole, and the job's
// Python output files, filtered to its "(pid=N) " lines.
enum class OutputKind { kNone, kWhole, kFiltered };
OutputKind OutputOf(const std::string& name, int64_t pid) {
  bool out_or_err =
      absl::EndsWith(name, ".out") || absl::EndsWith(name, ".err");
  if (!out_or_err) return OutputKind::kNone;
  if (absl::StartsWith(name, "python-")) return OutputKind::kFiltered;
  std::string suffix = absl::StrCat("-", pid, ".");
  if (absl::StartsWith(name, "cpp-") &&
      name.find(suffix) == name.size() - suffix.size() - 3) {
    return OutputKind::kWhole;
  }
  return OutputKind::kNone;
}

absl::Status ResolveActor(const std::string& head, LogQuery* q,
                          std::string* node) {
  std::string hex = absl::AsciiStrToLower(q->actor_id);
  std::string id = absl::HexStringToBytes(hex);
  if (id.size() != ActorId::kSize || HexEncode(id) != hex) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", q->actor_id, "' is not an actor id (",
                     2 * ActorId::kSize, " hex digits; `loom list actors`)"));
  }
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, kCallMs);
  rpc::GetActorRequest req;
  req.set_actor_id(id);
  rpc::GetActorReply reply;
  grpc::Status s = Stub(head)->GetActor(&ctx, req, &reply);
  if (!s.ok()) return rpc::ToAbsl(s);
  if (reply.actor().pid() == 0 || reply.actor().node_id().empty()) {
    return absl::NotFoundError(
        absl::StrCat("actor ", q->actor_id, " has no process (",
                     rpc::ActorInfo::State_Name(reply.actor().state()), ")"));
  }
  q->pid = reply.actor().pid();
  *node = reply.actor().node_id();
  return absl::OkStatus();
}

// The process that ran a task (the head's task record), or a worker's
// (its raylet's list): its pid and node.
absl::Status ResolveByState(const std::string& head, const std::string& kind,
                            const std::string& id, LogQuery* q,
                            std::string* node) {
  auto row = GetState(head, kind, id);
  if (!row.ok()) return row.status();
  std::string pid, node_hex;
  for (const auto& [column, value] : *row) {
    if (column == "pid") pid = value;
    if (column == "node_id") node_hex = value;
  }
  if (pid.empty() || node_hex.empty() || !absl::SimpleAtoi(pid, &q->pid)) {
    return absl::NotFoundError(absl::StrCat(
        kind.substr(0, kind.size() - 1), " ", id,
        " has not run on a worker yet (`loom get ", kind, " ", id, "`)"));
  }
  *node = absl::HexStringToBytes(node_hex);
  return absl::OkStatus();
}

}  // namespace

struct LogStream::Target {
  std::string node;  // binary id
  std::string name;
  bool filtered = false;  // keep only the query's pid's lines
  int64_t offset = 0;
  bool started = false;  // the tail was applied
  bool at_end = false;
  std::string partial;   // a filtered file's line not ended yet
  bool tailing = false;  // collecting a filtered file's last lines
  std::deque<std::string> last;
};

absl::StatusOr<rpc::ListLogsReply> ListLogs(const std::string& head,
                                            const std::string& node_id_hex) {
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, kCallMs);
  rpc::ListLogsRequest req;
  if (!node_id_hex.empty()) {
    req.set_node_id(absl::HexStringToBytes(node_id_hex));
  }
  rpc::ListLogsReply reply;
  grpc::Status s = Stub(head)->ListLogs(&ctx, req, &reply);
  if (!s.ok()) return rpc::ToAbsl(s);
  return reply;
}

absl::StatusOr<std::unique_ptr<LogStream>> LogStream::Open(
    const std::string& head, const LogQuery& query) {
  LogQuery q = query;
  if (q.file.empty() && q.pid <= 0 && q.actor_id.empty() && q.task_id.empty() &&
      q.worker_id.empty()) {
    return absl::InvalidArgumentError(
        "name a log file, a pid, an actor, a task or a worker");
  }
  std::string actor_node;
  if (!q.actor_id.empty()) {
    if (auto s = ResolveActor(head, &q, &actor_node); !s.ok()) return s;
  } else if (!q.task_id.empty()) {
    auto s = ResolveByState(head, "tasks", q.task_id, &q, &actor_node);
    if (!s.ok()) return s;
  } else if (!q.worker_id.empty()) {
    auto s = ResolveByState(head, "workers", q.worker_id, &q, &actor_node);
    if (!s.ok()) return s;
  }
  auto logs = ListLogs(head, "");
  if (!logs.ok()) return logs.status();
  bool named = !q.node_id.empty() || !q.node_ip.empty() || !actor_node.empty();
  std::vector<const rpc::NodeLogFiles*> nodes;
  for (const auto& n : logs->nodes()) {
    if (!absl::StartsWith(HexEncode(n.node_id()), q.node_id)) continue;
    if (!q.node_ip.empty() && n.host() != q.node_ip) continue;
    if (!actor_node.empty() && n.node_id() != actor_node) continue;
    bool has = q.file.empty() ||
               std::any_of(n.files().begin(), n.files().end(),
                           [&](const auto& f) { return f.name() == q.file; });
    if (has || named) nodes.push_back(&n);
  }
  if (nodes.empty()) {
    return absl::NotFoundError(
        absl::StrCat(named ? "no alive node matches"
                           : "no node has a log file '" + q.file + "'",
                     " (`loom logs` lists them)"));
  }
  if (nodes.size() > 1) {
    std::string which;
    for (const auto* n : nodes) {
      absl::StrAppend(&which, " ", HexEncode(n->node_id()), " (", n->host(),
                      ")");
    }
    return absl::InvalidArgumentError(
        absl::StrCat("several nodes match; choose one with --node-id:", which));
  }
  const rpc::NodeLogFiles& node = *nodes[0];
  std::vector<Target> targets;
  if (!q.file.empty()) {
    targets.push_back(Target{node.node_id(), q.file});
  } else {
    for (const auto& f : node.files()) {
      OutputKind kind = OutputOf(f.name(), q.pid);
      if (kind == OutputKind::kNone) continue;
      Target t{node.node_id(), f.name()};
      t.filtered = kind == OutputKind::kFiltered;
      targets.push_back(std::move(t));
    }
    if (targets.empty()) {
      return absl::NotFoundError(
          absl::StrCat("no output files on node ", HexEncode(node.node_id())));
    }
  }
  return std::unique_ptr<LogStream>(
      new LogStream(head, std::move(q), std::move(targets)));
}

LogStream::LogStream(std::string head, LogQuery query,
                     std::vector<Target> targets)
    : head_(std::move(head)),
      query_(std::move(query)),
      targets_(std::move(targets)) {}

LogStream::~LogStream() = default;

absl::StatusOr<std::string> LogStream::Next() {
  std::string out;
  bool all_at_end = true;
  for (Target& t : targets_) {
    auto text = ReadTarget(t);
    if (!text.ok()) return text.status();
    out += *text;
    all_at_end = all_at_end && t.at_end;
  }
  caught_up_ = all_at_end;
  if (all_at_end && !query_.follow) done_ = true;
  return out;
}

absl::StatusOr<std::string> LogStream::ReadTarget(Target& t) {
  auto chunk = Read(head_, t.node, t.name, t.offset);
  if (!chunk.ok()) return chunk.status();
  if (!t.started) {
    t.started = true;
    t.tailing = t.filtered && query_.tail >= 0;
    if (!t.filtered && query_.tail >= 0) {
      auto start = TailStart(head_, t.node, t.name, query_.tail, chunk->size());
      if (!start.ok()) return start.status();
      t.offset = *start;
      chunk = Read(head_, t.node, t.name, t.offset);
      if (!chunk.ok()) return chunk.status();
    }
  }
  if (chunk->size() < t.offset) {  // truncated or replaced: from its start
    t.offset = 0;
    t.partial.clear();
    t.at_end = false;
    return std::string();
  }
  std::string data = std::move(*chunk->mutable_data());
  t.offset = chunk->offset() + static_cast<int64_t>(data.size());
  t.at_end = t.offset >= chunk->size();
  if (!t.filtered) return data;
  // Whole lines of this pid, without their "(pid=N) " prefix.
  std::string text = t.partial + data;
  size_t end = text.rfind('\n');
  t.partial = end == std::string::npos ? text : text.substr(end + 1);
  std::string prefix = absl::StrCat("(pid=", query_.pid, ") ");
  std::string out;
  size_t at = 0;
  while (end != std::string::npos && at <= end) {
    size_t nl = text.find('\n', at);
    std::string_view line(text.data() + at, nl - at + 1);
    at = nl + 1;
    if (line.substr(0, prefix.size()) != prefix) continue;
    line.remove_prefix(prefix.size());
    if (!t.tailing) {
      out.append(line);
      continue;
    }
    t.last.emplace_back(line);
    if (static_cast<int64_t>(t.last.size()) > query_.tail) t.last.pop_front();
  }
  if (t.tailing && t.at_end) {  // the file read through: its last lines
    for (const auto& line : t.last) out += line;
    t.last.clear();
    t.tailing = false;
  }
  return out;
}

}  // namespace loom
