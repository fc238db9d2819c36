#include "runtime/state_api.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "proto/gcs.grpc.pb.h"
#include "proto/raylet.grpc.pb.h"
#include "src/common/ids.h"
#include "src/common/quota_text.h"
#include "src/common/rpc.h"
#include "src/common/tls.h"
#include "src/common/wire.h"

namespace loom {
namespace {

constexpr int64_t kTimeoutMs = 10000;

std::string Hex(const std::string& binary) {
  return binary.empty() ? "" : HexEncode(binary);
}

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E3S", t, absl::UTCTimeZone());
}

std::string MsText(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", ms);
  return buf;
}

// b - a in ms, "" unless both are known.
std::string Between(int64_t a_us, int64_t b_us) {
  return a_us > 0 && b_us > 0 ? MsText((b_us - a_us) / 1000.0) : "";
}

absl::Status Unreachable(const std::string& head, const grpc::Status& s) {
  absl::Status status = rpc::ToAbsl(s);
  if (absl::IsInvalidArgument(status)) return status;
  return HeadUnreachableError(head, s.error_message());
}

std::unique_ptr<rpc::Gcs::Stub> HeadStub(const std::string& head) {
  return rpc::Gcs::NewStub(rpc::MakeChannel(head));
}

// Rows of one kind, every column; `brief` names the table's columns.
struct Rows {
  std::vector<std::string> columns, brief;
  std::vector<StateRow> rows;
  std::vector<std::string> warnings;
  int64_t total = -1;  // set when the source counted (tasks)
};

StateRow TaskRow(const rpc::TaskEvent& t) {
  bool failed = t.state() == "FAILED" || t.retried();
  int64_t end = t.finished_us() ? t.finished_us() : t.failed_us();
  return {
      {"task_id", Hex(t.task_id())},
      {"attempt", std::to_string(t.attempt())},
      {"name", t.name()},
      {"state", t.state()},
      {"type", rpc::TaskEvent::Type_Name(t.type())},
      {"job_id", Hex(t.job_id())},
      {"actor_id", Hex(t.actor_id())},
      {"node_id", Hex(t.node_id())},
      {"worker_id", Hex(t.worker_id())},
      {"pid", t.pid() ? std::to_string(t.pid()) : ""},
      {"error_type", failed ? rpc::ErrorInfo::Kind_Name(t.error_kind()) : ""},
      {"error_message", failed ? t.error_message() : ""},
      {"submitted_at", t.submitted_us()
                           ? TimeText(absl::FromUnixMicros(t.submitted_us()))
                           : ""},
      {"queued_ms", Between(t.submitted_us(), t.run_start_us())},
      {"fetch_args_ms", Between(t.exec_start_us(), t.run_start_us())},
      {"run_ms", Between(t.run_start_us(), t.run_end_us())},
      {"store_result_ms", Between(t.run_end_us(), t.exec_end_us())},
      {"total_ms", Between(t.submitted_us(), end)},
  };
}

std::vector<std::string> ColumnsOf(const StateRow& row) {
  std::vector<std::string> out;
  for (const auto& [column, value] : row) out.push_back(column);
  return out;
}

absl::StatusOr<Rows> TaskRows(const std::string& head, const StateQuery& q) {
  rpc::ListTasksRequest req;
  for (const auto& f : q.filters) *req.add_filters() = f;
  req.set_limit(q.limit);
  auto reply = ListTaskRecords(head, req, kTimeoutMs);
  if (!reply.ok()) return reply.status();
  Rows out;
  out.columns = ColumnsOf(TaskRow(rpc::TaskEvent()));
  out.brief = {"task_id", "attempt", "name", "state",
               "type",    "node_id", "pid",  "error_type"};
  for (const auto& t : reply->tasks()) out.rows.push_back(TaskRow(t));
  out.total = reply->total();
  if (reply->evicted() > 0) {
    out.warnings.push_back(absl::StrCat(
        "the head dropped the records of ", reply->evicted(),
        " tasks past its bound (--task-events-max-per-job); `loom summary "
        "tasks` still counts them"));
  }
  if (reply->dropped_events() > 0) {
    out.warnings.push_back(absl::StrCat(
        reply->dropped_events(),
        " task events were dropped before reaching the head (a worker's "
        "buffer was full or the head was unreachable)"));
  }
  return out;
}

const char* ActorState(rpc::ActorInfo::State s) {
  return rpc::ActorInfo::State_Name(s).c_str();
}

absl::StatusOr<rpc::ListActorsReply> FetchActors(const std::string& head) {
  rpc::ListActorsReply reply;
  grpc::Status s = rpc::CallHead(kTimeoutMs, [&](rpc::Context* ctx) {
    return HeadStub(head)->ListActors(ctx, rpc::ListActorsRequest(), &reply);
  });
  if (!s.ok()) return Unreachable(head, s);
  return reply;
}

absl::StatusOr<Rows> ActorRows(const std::string& head) {
  auto reply = FetchActors(head);
  if (!reply.ok()) return reply.status();
  Rows out;
  out.brief = {"actor_id", "class_name", "name",     "state",
               "node_id",  "pid",        "restarts", "death_cause"};
  for (const auto& a : reply->actors()) {
    out.rows.push_back({
        {"actor_id", Hex(a.actor_id())},
        {"class_name", a.class_name()},
        {"name", a.name()},
        {"state", ActorState(a.state())},
        {"node_id", Hex(a.node_id())},
        {"pid", a.pid() ? std::to_string(a.pid()) : ""},
        {"restarts", std::to_string(a.num_restarts())},
        {"death_cause", a.death_cause()},
        {"namespace", a.ns()},
        {"job_id", Hex(a.job_id())},
        {"max_restarts", std::to_string(a.max_restarts())},
        {"max_task_retries", std::to_string(a.max_task_retries())},
        {"detached", a.detached() ? "true" : "false"},
        {"address",
         a.address().host().empty()
             ? ""
             : absl::StrCat(a.address().host(), ":", a.address().port())},
    });
  }
  if (reply->erased_dead() > 0) {
    out.warnings.push_back(
        absl::StrCat(reply->erased_dead(),
                     " older dead actors were erased: the head keeps "
                     "the last ",
                     reply->max_dead(), " (loom-gcs --max-dead-actors)"));
  }
  return out;
}

absl::StatusOr<rpc::GetClusterStatusReply> FetchNodes(const std::string& head) {
  rpc::GetClusterStatusReply reply;
  grpc::Status s = rpc::CallHead(kTimeoutMs, [&](rpc::Context* ctx) {
    return HeadStub(head)->GetClusterStatus(ctx, rpc::GetClusterStatusRequest(),
                                            &reply);
  });
  if (!s.ok()) return Unreachable(head, s);
  return reply;
}

absl::StatusOr<Rows> NodeRows(const std::string& head) {
  auto reply = FetchNodes(head);
  if (!reply.ok()) return reply.status();
  Rows out;
  out.brief = {"node_id", "raylet", "state", "pid", "resources"};
  for (const auto& n : reply->nodes()) {
    auto total = ResourcesFromProto(n.total());
    auto available = ResourcesFromProto(n.available());
    std::vector<std::string> labels;
    for (const auto& [k, v] : n.labels()) labels.push_back(k + "=" + v);
    std::sort(labels.begin(), labels.end());
    out.rows.push_back({
        {"node_id", Hex(n.node_id())},
        {"raylet", absl::StrCat(n.host(), ":", n.raylet_port())},
        {"state", n.alive() ? "ALIVE" : "DEAD"},
        {"pid", std::to_string(n.pid())},
        {"resources",
         absl::StrCat(available.ok() ? available->ToString() : "?", " / ",
                      total.ok() ? total->ToString() : "?")},
        {"node_ip", n.host()},
        {"metrics_port", std::to_string(n.metrics_port())},
        {"labels", absl::StrJoin(labels, ",")},
        {"last_heartbeat_at",
         n.last_heartbeat_ms()
             ? TimeText(absl::FromUnixMillis(n.last_heartbeat_ms()))
             : ""},
    });
  }
  if (reply->erased_dead() > 0) {
    out.warnings.push_back(
        absl::StrCat(reply->erased_dead(),
                     " older dead nodes were erased: the head keeps the last ",
                     reply->max_dead(), " (loom-gcs --max-dead-nodes)"));
  }
  return out;
}

// "max-cpus 2, max-actors 4" ("" without limits).
absl::StatusOr<Rows> JobRows(const std::string& head) {
  rpc::GetJobsReply reply;
  grpc::Status s = rpc::CallHead(kTimeoutMs, [&](rpc::Context* ctx) {
    return HeadStub(head)->GetJobs(ctx, rpc::GetJobsRequest(), &reply);
  });
  if (!s.ok()) return Unreachable(head, s);
  Rows out;
  out.brief = {"job_id",  "state",      "driver_pid",
               "node_id", "start_time", "end_time"};
  for (const auto& j : reply.jobs()) {
    out.rows.push_back({
        {"job_id", Hex(j.job_id())},
        {"state", rpc::JobInfo::State_Name(j.state())},
        {"driver_pid", std::to_string(j.driver_pid())},
        {"node_id", Hex(j.node_id())},
        {"start_time",
         j.start_ms() ? TimeText(absl::FromUnixMillis(j.start_ms())) : ""},
        {"end_time",
         j.end_ms() ? TimeText(absl::FromUnixMillis(j.end_ms())) : ""},
        {"driver_address", j.driver_address()},
        {"owner", j.owner()},
        {"quota", DescribeQuota(j.quota())},
        {"use", j.has_use()
                    ? absl::StrCat(j.use().cpus(), " CPUs, ", j.use().gpus(),
                                   " GPUs, ", j.use().object_store_bytes(),
                                   " object-store bytes, ", j.use().actors(),
                                   " actors")
                    : ""},
    });
    if (j.use().waiting() > 0) {
      out.warnings.push_back(absl::StrCat(
          "job ", Hex(j.job_id()), ": ", j.use().waiting(),
          " lease requests of its tasks and actors wait for its quota (",
          DescribeQuota(j.quota()), "; it holds ", j.use().cpus(), " CPUs and ",
          j.use().gpus(), " GPUs)"));
    }
  }
  if (reply.erased_finished() > 0) {
    out.warnings.push_back(
        absl::StrCat(reply.erased_finished(),
                     " older ended jobs were erased: the head keeps the last ",
                     reply.max_finished(), " (loom-gcs --max-finished-jobs)"));
  }
  return out;
}

absl::StatusOr<Rows> PlacementGroupRows(const std::string& head) {
  rpc::ListPlacementGroupsReply reply;
  grpc::Status s = rpc::CallHead(kTimeoutMs, [&](rpc::Context* ctx) {
    return HeadStub(head)->ListPlacementGroups(
        ctx, rpc::ListPlacementGroupsRequest(), &reply);
  });
  if (!s.ok()) return Unreachable(head, s);
  Rows out;
  out.brief = {"placement_group_id", "name", "strategy", "state", "bundles"};
  for (const auto& g : reply.groups()) {
    std::vector<std::string> bundles;
    for (int i = 0; i < g.bundles_size(); ++i) {
      auto r = ResourcesFromProto(g.bundles(i));
      std::string b = r.ok() ? r->ToString() : "?";
      if (i < g.bundle_nodes_size()) {
        absl::StrAppend(&b, " (", Hex(g.bundle_nodes(i)).substr(0, 12), ")");
      }
      bundles.push_back(b);
    }
    out.rows.push_back({
        {"placement_group_id", Hex(g.pg_id())},
        {"name", g.name()},
        {"strategy", rpc::PlacementGroupInfo::Strategy_Name(g.strategy())},
        {"state", rpc::PlacementGroupInfo::State_Name(g.state())},
        {"bundles", absl::StrJoin(bundles, "  ")},
        {"job_id", Hex(g.job_id())},
        {"message", g.message()},
    });
  }
  return out;
}

// Each alive node's raylet stats; a node that does not answer is a warning.
struct NodeStats {
  std::string node_id;
  rpc::GetNodeStatsReply stats;
};
absl::StatusOr<std::vector<NodeStats>> FetchNodeStats(
    const std::string& head, std::vector<std::string>* warnings) {
  auto nodes = FetchNodes(head);
  if (!nodes.ok()) return nodes.status();
  std::vector<NodeStats> out;
  for (const auto& n : nodes->nodes()) {
    if (!n.alive()) continue;
    std::string raylet = absl::StrCat(n.host(), ":", n.raylet_port());
    rpc::Context ctx;
    rpc::SetTimeout(&ctx, 5000);
    NodeStats ns{Hex(n.node_id()), {}};
    grpc::Status s =
        rpc::Raylet::NewStub(rpc::MakeChannel(raylet))
            ->GetNodeStats(&ctx, rpc::GetNodeStatsRequest(), &ns.stats);
    if (!s.ok()) {
      warnings->push_back(
          absl::StrCat("node ", ns.node_id, " (", raylet,
                       ") did not answer: ", s.error_message()));
      continue;
    }
    out.push_back(std::move(ns));
  }
  return out;
}

absl::StatusOr<Rows> WorkerRows(const std::string& head) {
  Rows out;
  auto nodes = FetchNodeStats(head, &out.warnings);
  if (!nodes.ok()) return nodes.status();
  out.brief = {"worker_id", "node_id", "pid", "state", "job_id", "language"};
  for (const auto& n : *nodes) {
    for (const auto& w : n.stats.workers()) {
      out.rows.push_back({
          {"worker_id", Hex(w.worker_id())},
          {"node_id", n.node_id},
          {"pid", std::to_string(w.pid())},
          {"state", w.state()},
          {"job_id", Hex(w.job_id())},
          {"language", w.language()},
          {"detached", w.detached() ? "true" : "false"},
          {"started_at", w.started_ms()
                             ? TimeText(absl::FromUnixMillis(w.started_ms()))
                             : ""},
      });
    }
  }
  return out;
}

absl::StatusOr<Rows> ObjectRows(const std::string& head) {
  Rows out;
  auto nodes = FetchNodeStats(head, &out.warnings);
  if (!nodes.ok()) return nodes.status();
  out.brief = {"object_id", "size", "node_id", "copy", "pinned", "owner"};
  for (const auto& n : *nodes) {
    for (const auto& o : n.stats.largest_objects()) {
      out.rows.push_back({
          {"object_id", Hex(o.object_id())},
          {"size", std::to_string(o.size())},
          {"node_id", n.node_id},
          {"copy", o.primary() ? "primary" : "secondary"},
          {"pinned", o.pinned() ? "true" : "false"},
          {"owner", o.owner()},
      });
    }
  }
  out.warnings.push_back(
      "objects: the 10 largest in each node's store; small objects live in "
      "their owners' memory and are not listed (`loom summary objects` "
      "counts every object in the stores)");
  return out;
}

absl::StatusOr<Rows> FetchRows(const std::string& head, const StateQuery& q) {
  if (q.kind == "tasks") return TaskRows(head, q);
  if (q.kind == "actors") return ActorRows(head);
  if (q.kind == "nodes") return NodeRows(head);
  if (q.kind == "jobs") return JobRows(head);
  if (q.kind == "placement-groups") return PlacementGroupRows(head);
  if (q.kind == "workers") return WorkerRows(head);
  if (q.kind == "objects") return ObjectRows(head);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown kind '", q.kind,
                   "'; one of: ", absl::StrJoin(StateKinds(), ", ")));
}

StateRow Only(const StateRow& row, const std::vector<std::string>& columns) {
  StateRow out;
  for (const auto& c : columns) {
    for (const auto& [column, value] : row) {
      if (column == c) out.emplace_back(column, value);
    }
  }
  return out;
}

std::string IdColumn(const std::string& kind) {
  if (kind == "placement-groups") return "placement_group_id";
  std::string one = kind.substr(0, kind.size() - 1);  // tasks -> task
  return one + "_id";
}

}  // namespace

absl::StatusOr<std::string> JobIdFromHex(const std::string& hex) {
  if (hex.size() != 2 * JobId::kSize ||
      hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "job id must be ", 2 * JobId::kSize, " hex digits, got '", hex, "'"));
  }
  return absl::HexStringToBytes(hex);
}

absl::StatusOr<rpc::ListTasksReply> ListTaskRecords(
    const std::string& head, const rpc::ListTasksRequest& req,
    int64_t timeout_ms) {
  rpc::ListTasksReply reply;
  grpc::Status s = rpc::CallHead(timeout_ms, [&](rpc::Context* ctx) {
    return HeadStub(head)->ListTasks(ctx, req, &reply);
  });
  if (!s.ok()) return Unreachable(head, s);
  return reply;
}

const std::vector<std::string>& StateKinds() {
  static const auto* kinds = new std::vector<std::string>{
      "tasks", "actors",  "objects",         "nodes",
      "jobs",  "workers", "placement-groups"};
  return *kinds;
}

absl::StatusOr<StateListing> ListState(const std::string& head,
                                       const StateQuery& query) {
  if (query.limit < 0) {
    return absl::InvalidArgumentError("limit must be >= 0");
  }
  if (query.kind != "tasks") {
    // Checked against every column before anything is fetched.
    auto known = FetchRows(head, StateQuery{query.kind, {}, 0, false});
    if (!known.ok()) return known.status();
    std::vector<std::string> columns;
    for (const auto& c : known->brief) columns.push_back(c);
    if (!known->rows.empty()) columns = ColumnsOf(known->rows.front());
    if (absl::Status s = CheckFilters(query.filters, columns, query.kind);
        !s.ok()) {
      return s;
    }
    StateListing out;
    out.columns = query.detail ? columns : known->brief;
    out.warnings = known->warnings;
    int64_t limit = query.limit > 0 ? query.limit : 100;
    for (const auto& row : known->rows) {
      if (!RowMatches(row, query.filters)) continue;
      if (out.total++ < limit) out.rows.push_back(Only(row, out.columns));
    }
    return out;
  }
  auto rows = TaskRows(head, query);
  if (!rows.ok()) return rows.status();
  StateListing out;
  out.columns = query.detail ? rows->columns : rows->brief;
  out.total = rows->total;
  out.warnings = rows->warnings;
  for (const auto& row : rows->rows) out.rows.push_back(Only(row, out.columns));
  return out;
}

absl::StatusOr<StateRow> GetState(const std::string& head,
                                  const std::string& kind,
                                  const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("no id given");
  rpc::StateFilter f;
  f.set_key(IdColumn(kind));
  f.set_op("=");
  f.set_value(id);
  StateQuery q{kind, {f}, 2, true};
  auto listing = ListState(head, q);
  if (!listing.ok()) return listing.status();
  if (listing->rows.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no ", kind.substr(0, kind.size() - 1), " with id ", id,
                     kind == "tasks" ? " (the head keeps task records a "
                                       "second after the task's events)"
                                     : ""));
  }
  if (listing->total > 1) {
    return absl::InvalidArgumentError(absl::StrCat("id prefix ", id, " names ",
                                                   listing->total, " ", kind,
                                                   "; give more of it"));
  }
  return listing->rows.front();
}

absl::StatusOr<StateListing> SummarizeState(const std::string& head,
                                            const std::string& kind,
                                            const std::string& job_hex) {
  StateListing out;
  if (kind == "tasks") {
    rpc::SummarizeTasksRequest req;
    if (!job_hex.empty()) {
      auto job = JobIdFromHex(job_hex);
      if (!job.ok()) return job.status();
      req.set_job_id(*job);
    }
    rpc::SummarizeTasksReply reply;
    grpc::Status s = rpc::CallHead(kTimeoutMs, [&](rpc::Context* ctx) {
      return HeadStub(head)->SummarizeTasks(ctx, req, &reply);
    });
    if (!s.ok()) return Unreachable(head, s);
    out.columns = {"name",          "type",         "total",
                   "FINISHED",      "FAILED",       "RUNNING",
                   "PENDING",       "run_p50_ms",   "run_p95_ms",
                   "run_p99_ms",    "run_mean_ms",  "queued_p50_ms",
                   "queued_p95_ms", "queued_p99_ms"};
    for (const auto& f : reply.functions()) {
      auto count = [&](const char* state) {
        auto it = f.states().find(state);
        return it == f.states().end() ? int64_t{0} : it->second;
      };
      int64_t total = 0;
      for (const auto& [state, n] : f.states()) total += n;
      int64_t pending = count("PENDING_ARGS_AVAIL") +
                        count("PENDING_NODE_ASSIGNMENT") +
                        count("SUBMITTED_TO_WORKER");
      out.rows.push_back({
          {"name", f.name()},
          {"type", rpc::TaskEvent::Type_Name(f.type())},
          {"total", std::to_string(total)},
          {"FINISHED", std::to_string(count("FINISHED"))},
          {"FAILED", std::to_string(count("FAILED"))},
          {"RUNNING", std::to_string(count("RUNNING"))},
          {"PENDING", std::to_string(pending)},
          {"run_p50_ms", MsText(f.run_p50_ms())},
          {"run_p95_ms", MsText(f.run_p95_ms())},
          {"run_p99_ms", MsText(f.run_p99_ms())},
          {"run_mean_ms", MsText(f.run_mean_ms())},
          {"queued_p50_ms", MsText(f.queued_p50_ms())},
          {"queued_p95_ms", MsText(f.queued_p95_ms())},
          {"queued_p99_ms", MsText(f.queued_p99_ms())},
      });
    }
    if (reply.dropped_events() > 0) {
      out.warnings.push_back(
          absl::StrCat(reply.dropped_events(),
                       " task events were dropped before reaching the head"));
    }
  } else if (kind == "actors") {
    auto reply = FetchActors(head);
    if (!reply.ok()) return reply.status();
    std::map<std::string, std::map<std::string, int64_t>> by_class;
    for (const auto& a : reply->actors()) {
      by_class[a.class_name()][ActorState(a.state())]++;
    }
    out.columns = {"class_name", "total",      "ALIVE",
                   "PENDING",    "RESTARTING", "DEAD"};
    for (auto& [cls, states] : by_class) {
      int64_t total = 0;
      for (const auto& [state, n] : states) total += n;
      out.rows.push_back({{"class_name", cls},
                          {"total", std::to_string(total)},
                          {"ALIVE", std::to_string(states["ALIVE"])},
                          {"PENDING", std::to_string(states["PENDING"])},
                          {"RESTARTING", std::to_string(states["RESTARTING"])},
                          {"DEAD", std::to_string(states["DEAD"])}});
    }
  } else if (kind == "objects") {
    auto nodes = FetchNodeStats(head, &out.warnings);
    if (!nodes.ok()) return nodes.status();
    out.columns = {"node_id",        "objects", "used_bytes",
                   "capacity_bytes", "pinned",  "spilled_objects",
                   "spilled_bytes"};
    for (const auto& n : *nodes) {
      const auto& s = n.stats;
      out.rows.push_back(
          {{"node_id", n.node_id},
           {"objects", std::to_string(s.store_objects())},
           {"used_bytes", std::to_string(s.store_used())},
           {"capacity_bytes", std::to_string(s.store_capacity())},
           {"pinned", std::to_string(s.store_pinned())},
           {"spilled_objects", std::to_string(s.store_spilled_objects())},
           {"spilled_bytes", std::to_string(s.store_spilled_bytes())}});
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot summarize '", kind, "'; one of: tasks, actors, objects"));
  }
  out.total = out.rows.size();
  return out;
}

}  // namespace loom
