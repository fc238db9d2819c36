#include "runtime/timeline.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/state_api.h"
#include "src/common/ids.h"

namespace loom {
namespace {

// The thread row of a node's object transfers (worker rows are pids).
constexpr int64_t kTransferTrack = 1;

class Trace {
 public:
  void Slice(const std::string& name, const char* cat, int pid, int64_t tid,
             int64_t from_us, int64_t to_us, const std::string& args) {
    if (from_us <= 0 || to_us < from_us) return;
    Add(absl::StrCat("{\"name\":", JsonString(name), ",\"cat\":\"", cat,
                     "\",\"ph\":\"X\",\"ts\":", from_us,
                     ",\"dur\":", to_us - from_us, ",\"pid\":", pid,
                     ",\"tid\":", tid, ",\"args\":{", args, "}}"));
  }
  // Overlapping spans on one track (Chrome's async events).
  void Span(const std::string& name, int pid, const std::string& id,
            int64_t from_us, int64_t to_us) {
    if (from_us <= 0 || to_us < from_us) return;
    for (auto [ph, ts] : {std::pair{"b", from_us}, std::pair{"e", to_us}}) {
      Add(absl::StrCat("{\"name\":", JsonString(name),
                       ",\"cat\":\"pending\",\"ph\":\"", ph, "\",\"id\":\"", id,
                       "\",\"ts\":", ts, ",\"pid\":", pid, ",\"tid\":0}"));
    }
  }
  // An arrow from one slice to another (Chrome's flow events).
  void Flow(const std::string& id, int from_pid, int64_t from_tid,
            int64_t from_us, int to_pid, int64_t to_tid, int64_t to_us) {
    Add(absl::StrCat("{\"name\":\"transfer\",\"cat\":\"transfer\",",
                     "\"ph\":\"s\",\"id\":\"", id, "\",\"ts\":", from_us,
                     ",\"pid\":", from_pid, ",\"tid\":", from_tid, "}"));
    Add(absl::StrCat("{\"name\":\"transfer\",\"cat\":\"transfer\",",
                     "\"ph\":\"f\",\"bp\":\"e\",\"id\":\"", id, "\",\"ts\":",
                     to_us, ",\"pid\":", to_pid, ",\"tid\":", to_tid, "}"));
  }
  void Name(const char* what, int pid, int64_t tid, const std::string& name) {
    Add(absl::StrCat("{\"name\":\"", what, "\",\"ph\":\"M\",\"pid\":", pid,
                     ",\"tid\":", tid, ",\"args\":{\"name\":", JsonString(name),
                     "}}"));
  }
  std::string Json() const { return "{\"traceEvents\":[\n" + body_ + "\n]}\n"; }
  int64_t size() const { return count_; }

 private:
  void Add(const std::string& event) {
    if (count_++ > 0) body_ += ",\n";
    body_ += event;
  }
  std::string body_;
  int64_t count_ = 0;
};

}  // namespace

absl::StatusOr<std::string> TimelineJson(const std::string& head,
                                         const std::string& job_hex,
                                         int64_t* events) {
  rpc::ListTasksRequest req;
  req.set_limit(int64_t{1} << 40);  // all the head holds
  req.set_transfers(true);
  if (!job_hex.empty()) {
    if (auto job = JobIdFromHex(job_hex); !job.ok()) return job.status();
    rpc::StateFilter* f = req.add_filters();
    f->set_key("job_id");
    f->set_op("=");
    f->set_value(job_hex);
  }
  auto records = ListTaskRecords(head, req, 60000);
  if (!records.ok()) return records.status();
  const rpc::ListTasksReply& reply = *records;
  Trace trace;
  std::map<std::string, int> nodes;  // node id -> trace pid
  auto node_pid = [&](const std::string& node_id) {
    auto [node, added] = nodes.try_emplace(node_id, nodes.size() + 1);
    if (added) {
      trace.Name("process_name", node->second, 0,
                 "node " + HexEncode(node_id).substr(0, 12));
      trace.Name("thread_name", node->second, 0, "pending (per task)");
      trace.Name("thread_name", node->second, kTransferTrack,
                 "object transfers");
    }
    return node->second;
  };
  std::map<std::pair<int, int64_t>, bool> workers;
  // Oldest first, so that the trace reads in order.
  for (int i = reply.tasks_size() - 1; i >= 0; --i) {
    const rpc::TaskEvent& t = reply.tasks(i);
    if (t.node_id().empty()) continue;  // never ran (yet)
    int pid = node_pid(t.node_id());
    if (!workers[{pid, t.pid()}]) {
      workers[{pid, t.pid()}] = true;
      trace.Name("thread_name", pid, t.pid(),
                 absl::StrCat("worker ", t.pid(), " (",
                              HexEncode(t.worker_id()).substr(0, 8), ")"));
    }
    std::string id = HexEncode(t.task_id());
    std::string args =
        absl::StrCat("\"task_id\":\"", id, "\",\"state\":\"", t.state(),
                     "\",\"attempt\":", t.attempt(), ",\"job_id\":\"",
                     HexEncode(t.job_id()), "\"",
                     t.error_message().empty()
                         ? ""
                         : ",\"error\":" + JsonString(t.error_message()));
    int64_t end = t.exec_end_us() ? t.exec_end_us() : t.run_end_us();
    trace.Slice(t.name(), "task", pid, t.pid(), t.exec_start_us(), end, args);
    trace.Slice("fetch arguments", "phase", pid, t.pid(), t.exec_start_us(),
                t.run_start_us(), "");
    trace.Slice("run " + t.name(), "phase", pid, t.pid(), t.run_start_us(),
                t.run_end_us(), "");
    trace.Slice("store result", "phase", pid, t.pid(), t.run_end_us(),
                t.exec_end_us(), "");
    trace.Span("wait for arguments: " + t.name(), pid, id, t.submitted_us(),
               t.args_ready_us());
    trace.Span("wait for a worker: " + t.name(), pid, id,
               t.args_ready_us() ? t.args_ready_us() : t.submitted_us(),
               t.exec_start_us());
  }
  // Pulls: a slice on the receiving node's transfer track, one on the
  // sending node's, and an arrow between them.
  for (const rpc::ObjectTransfer& x : reply.transfers()) {
    int to = node_pid(x.to_node()), from = node_pid(x.from_node());
    std::string object = HexEncode(x.object_id());
    double seconds = (x.end_us() - x.start_us()) / 1e6;
    std::string args = absl::StrCat(
        "\"object_id\":\"", object, "\",\"bytes\":", x.bytes(),
        ",\"from_node\":\"", HexEncode(x.from_node()), "\",\"to_node\":\"",
        HexEncode(x.to_node()), "\",\"MB_per_s\":",
        seconds > 0 ? absl::StrCat(x.bytes() / seconds / 1e6) : "0",
        ",\"failed\":", x.failed() ? "true" : "false");
    std::string what =
        absl::StrCat(object.substr(0, 8), " (", x.bytes() >> 10, " KiB)");
    trace.Slice("pull " + what, "transfer", to, kTransferTrack, x.start_us(),
                x.end_us(), args);
    trace.Slice("send " + what, "transfer", from, kTransferTrack, x.start_us(),
                x.end_us(), args);
    trace.Flow(object + std::to_string(x.start_us()), from, kTransferTrack,
               x.start_us(), to, kTransferTrack, x.end_us());
  }
  if (events) *events = trace.size();
  return trace.Json();
}

}  // namespace loom
