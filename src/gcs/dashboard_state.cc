// The dashboard's JSON (dashboard.h): the head's tables, filtered, sorted
// and paged for what one page shows. Ids are hex, as `loom list` shows them.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "src/common/ids.h"
#include "src/common/json.h"
#include "src/gcs/dashboard.h"
#include "src/gcs/gcs_server.h"
#include "src/gcs/http_edge.h"

namespace loom::gcs {
namespace {

constexpr int64_t kMaxPage = 500;
constexpr int64_t kMaxLogRead = 1 << 20;
constexpr int64_t kLogNodesPerPage = 10;

std::string Hex(const std::string& bytes) {
  return bytes.empty() ? "" : HexEncode(bytes);
}

// ?name=N within [lo, hi]; `fallback` when absent; InvalidArgument else.
absl::StatusOr<int64_t> IntParam(const HttpRequest& req, const char* name,
                                 int64_t fallback, int64_t lo, int64_t hi) {
  std::string v = UrlParam(req.query, name);
  if (v.empty()) return fallback;
  int64_t n = 0;
  if (!absl::SimpleAtoi(v, &n) || n < lo || n > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be a number from ", lo, " to ", hi));
  }
  return n;
}

struct Paging {
  int64_t offset = 0, limit = 50;
};

absl::StatusOr<Paging> PageOf(const HttpRequest& req) {
  auto offset = IntParam(req, "offset", 0, 0, INT32_MAX);
  auto limit = IntParam(req, "limit", 50, 1, kMaxPage);
  if (!offset.ok()) return offset.status();
  if (!limit.ok()) return limit.status();
  return Paging{*offset, *limit};
}

// A hex id parameter as bytes ("" when absent); InvalidArgument when it is
// not hex.
absl::StatusOr<std::string> IdParam(const HttpRequest& req, const char* name) {
  std::string v = UrlParam(req.query, name);
  return IdFromHex(v, name);
}

std::string LinkJson(const std::string& url) {
  return url.empty() ? "null" : JsonString(url);
}

std::string ResourcesJson(const rpc::Resources& r) {
  std::map<std::string, double> sorted(r.quantities().begin(),
                                       r.quantities().end());
  std::string out = "{";
  for (const auto& [name, v] : sorted) {
    absl::StrAppend(&out, out.size() > 1 ? ", " : "", JsonString(name), ": ",
                    JsonNumber(v));
  }
  return out + "}";
}

std::string DemandsJson(
    const google::protobuf::RepeatedPtrField<rpc::Demand>& demands) {
  std::string out = "[";
  for (const rpc::Demand& d : demands) {
    absl::StrAppend(&out, out.size() > 1 ? ", " : "", R"({"shape": )",
                    ResourcesJson(d.shape()), R"(, "count": )", d.count(), "}");
  }
  return out + "]";
}

// What a page shows of a node: the head's record, and what its raylet said.
std::string NodeJson(const rpc::NodeInfo& n, const rpc::GetNodeStatsReply* s,
                     const std::string& error) {
  std::string labels = "{";
  std::map<std::string, std::string> sorted(n.labels().begin(),
                                            n.labels().end());
  for (const auto& [k, v] : sorted) {
    absl::StrAppend(&labels, labels.size() > 1 ? ", " : "", JsonString(k), ": ",
                    JsonString(v));
  }
  std::string out =
      absl::StrCat(R"({"node_id": ")", Hex(n.node_id()), R"(", "host": )",
                   JsonString(n.host()), R"(, "state": )",
                   n.alive() ? "\"ALIVE\"" : "\"DEAD\"", R"(, "pid": )",
                   n.pid(), R"(, "labels": )", labels, "}", R"(, "total": )",
                   ResourcesJson(n.total()), R"(, "available": )",
                   ResourcesJson(n.available()), R"(, "pending": )",
                   DemandsJson(n.pending()), R"(, "infeasible": )",
                   DemandsJson(n.infeasible()), R"(, "last_heartbeat_ms": )",
                   n.last_heartbeat_ms());
  if (!error.empty())
    absl::StrAppend(&out, R"(, "error": )", JsonString(error));
  if (s != nullptr && error.empty()) {
    const rpc::HostStats& h = s->host();
    std::string gpus = "[";
    for (const rpc::GpuStats& g : h.gpus()) {
      absl::StrAppend(
          &gpus, gpus.size() > 1 ? ", " : "", R"({"index": )", g.index(),
          R"(, "name": )", JsonString(g.name()), R"(, "utilization_percent": )",
          JsonNumber(g.utilization_percent()), R"(, "memory_used": )",
          g.memory_used(), R"(, "memory_total": )", g.memory_total(), "}");
    }
    absl::StrAppend(
        &out, R"(, "machine": {"cpu_percent": )", JsonNumber(h.cpu_percent()),
        R"(, "cpus": )", h.cpus(), R"(, "mem_total": )", h.mem_total(),
        R"(, "mem_used": )", h.mem_used(), R"(, "disk_total": )",
        h.disk_total(), R"(, "disk_used": )", h.disk_used(), R"(, "gpus": )",
        gpus, "]}", R"(, "workers": {"idle": )", s->workers_idle(),
        R"(, "leased": )", s->workers_leased(), R"(, "starting": )",
        s->workers_starting(), "}", R"(, "store": {"capacity": )",
        s->store_capacity(), R"(, "used": )", s->store_used(),
        R"(, "objects": )", s->store_objects(), R"(, "pinned": )",
        s->store_pinned(), R"(, "spilled_bytes": )", s->store_spilled_bytes(),
        R"(, "spilled_objects": )", s->store_spilled_objects(), "}");
  }
  return out + "}";
}

std::string ActorJson(const rpc::ActorInfo& a) {
  return absl::StrCat(
      R"({"actor_id": ")", Hex(a.actor_id()), R"(", "class_name": )",
      JsonString(a.class_name()), R"(, "name": )", JsonString(a.name()),
      R"(, "namespace": )", JsonString(a.ns()), R"(, "state": ")",
      rpc::ActorInfo::State_Name(a.state()), R"(", "job_id": ")",
      Hex(a.job_id()), R"(", "node_id": ")", Hex(a.node_id()), R"(", "pid": )",
      a.pid(), R"(, "num_restarts": )", a.num_restarts(),
      R"(, "max_restarts": )", a.max_restarts(), R"(, "death_cause": )",
      JsonString(a.death_cause()), R"(, "detached": )",
      a.detached() ? "true" : "false", R"(, "end_time_ms": )", a.end_time_ms(),
      "}");
}

std::string TaskJson(const rpc::TaskEvent& t) {
  return absl::StrCat(
      R"({"task_id": ")", Hex(t.task_id()), R"(", "attempt": )", t.attempt(),
      R"(, "name": )", JsonString(t.name()), R"(, "state": )",
      JsonString(t.state()), R"(, "type": ")",
      rpc::TaskEvent::Type_Name(t.type()), R"(", "job_id": ")", Hex(t.job_id()),
      R"(", "actor_id": ")", Hex(t.actor_id()), R"(", "node_id": ")",
      Hex(t.node_id()), R"(", "worker_id": ")", Hex(t.worker_id()),
      R"(", "pid": )", t.pid(), R"(, "submitted_us": )", t.submitted_us(),
      R"(, "run_start_us": )", t.run_start_us(), R"(, "run_end_us": )",
      t.run_end_us(), R"(, "finished_us": )", t.finished_us(),
      R"(, "failed_us": )", t.failed_us(), R"(, "error_type": )",
      t.failed_us() > 0
          ? absl::StrCat("\"", rpc::ErrorInfo::Kind_Name(t.error_kind()), "\"")
          : "null",
      R"(, "error_message": )", JsonString(t.error_message()),
      R"(, "retried": )", t.retried() ? "true" : "false", "}");
}

// On the head's loop: the alive nodes from the offset-th on, at most
// `limit`, and how many are alive.
struct AlivePage {
  std::vector<rpc::NodeInfo> nodes;
  int64_t alive = 0;
};
AlivePage AliveNodes(GcsServer* server, int64_t offset, int64_t limit) {
  rpc::GetClusterStatusReply status;
  server->HandleGetClusterStatus({}, &status, [](absl::Status) {});
  AlivePage page;
  for (const rpc::NodeInfo& n : status.nodes()) {
    if (!n.alive()) continue;
    if (page.alive >= offset && page.alive < offset + limit) {
      page.nodes.push_back(n);
    }
    ++page.alive;
  }
  return page;
}

std::vector<std::string> IdsOf(const std::vector<rpc::NodeInfo>& nodes) {
  std::vector<std::string> ids;
  for (const rpc::NodeInfo& n : nodes) ids.push_back(n.node_id());
  return ids;
}

// An actor's field a page sorts by.
bool ActorBefore(const rpc::ActorInfo& a, const rpc::ActorInfo& b,
                 const std::string& by) {
  if (by == "class") return a.class_name() < b.class_name();
  if (by == "name") return a.name() < b.name();
  if (by == "state") return a.state() < b.state();
  if (by == "node") return a.node_id() < b.node_id();
  if (by == "pid") return a.pid() < b.pid();
  if (by == "restarts") return a.num_restarts() < b.num_restarts();
  if (by == "ended") return a.end_time_ms() < b.end_time_ms();
  return a.actor_id() < b.actor_id();
}

}  // namespace

absl::StatusOr<std::string> IdFromHex(const std::string& hex,
                                      const char* name) {
  if (hex.size() % 2 != 0 || !std::all_of(hex.begin(), hex.end(), [](char c) {
        return absl::ascii_isxdigit(c);
      })) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be a hex id (as `loom list` shows)"));
  }
  return absl::HexStringToBytes(hex);
}

HttpResponse Dashboard::Cluster(const HttpRequest& req) const {
  auto page = PageOf(req);
  if (!page.ok()) return ErrorFor(page.status());
  struct View {
    rpc::GetClusterStatusReply status;
    std::vector<const rpc::NodeInfo*> shown;
    GcsServer::NodeStatsReplies stats;
  };
  GcsServer* server = server_;
  Paging p = *page;
  auto view = OnLoop<std::shared_ptr<View>>(server, [server, p](auto done) {
    auto v = std::make_shared<View>();
    server->HandleGetClusterStatus({}, &v->status, [](absl::Status) {});
    std::vector<const rpc::NodeInfo*> order;
    for (const rpc::NodeInfo& n : v->status.nodes()) order.push_back(&n);
    std::stable_sort(order.begin(), order.end(),
                     [](auto* a, auto* b) { return a->alive() > b->alive(); });
    std::vector<std::string> ids;
    for (int64_t i = p.offset;
         i < static_cast<int64_t>(order.size()) && i < p.offset + p.limit;
         ++i) {
      v->shown.push_back(order[i]);
      ids.push_back(order[i]->node_id());
    }
    server->AskNodeStats(ids, [v, done](GcsServer::NodeStatsReplies r) {
      v->stats = std::move(r);
      done(v);
    });
  });
  if (!view.ok()) return ErrorFor(view.status());
  const View& v = **view;
  std::map<std::string, double> total, available;
  std::map<std::string, int64_t> pending, infeasible;  // by shape's JSON
  int64_t alive = 0;
  for (const rpc::NodeInfo& n : v.status.nodes()) {
    if (!n.alive()) continue;
    ++alive;
    for (const auto& [k, q] : n.total().quantities()) total[k] += q;
    for (const auto& [k, q] : n.available().quantities()) available[k] += q;
    for (const auto& d : n.pending())
      pending[ResourcesJson(d.shape())] += d.count();
    for (const auto& d : n.infeasible()) {
      infeasible[ResourcesJson(d.shape())] += d.count();
    }
  }
  auto sums = [](const std::map<std::string, double>& m) {
    rpc::Resources r;
    for (const auto& [k, q] : m) (*r.mutable_quantities())[k] = q;
    return ResourcesJson(r);
  };
  auto demands = [](const std::map<std::string, int64_t>& m) {
    std::string out = "[";
    for (const auto& [shape, count] : m) {
      absl::StrAppend(&out, out.size() > 1 ? ", " : "", R"({"shape": )", shape,
                      R"(, "count": )", count, "}");
    }
    return out + "]";
  };
  std::string out = absl::StrCat(
      R"({"total_nodes": )", v.status.nodes_size(), R"(, "alive_nodes": )",
      alive, R"(, "erased_dead": )", v.status.erased_dead(),
      R"(, "resources": {"total": )", sums(total), R"(, "available": )",
      sums(available), R"(}, "pending": )", demands(pending),
      R"(, "infeasible": )", demands(infeasible), R"(, "links": {"grafana": )",
      LinkJson(options_.grafana_url), R"(, "prometheus": )",
      LinkJson(options_.prometheus_url), R"(}, "offset": )", p.offset,
      R"(, "nodes": [)");
  for (size_t i = 0; i < v.shown.size(); ++i) {
    absl::StrAppend(
        &out, i ? ", " : "",
        NodeJson(*v.shown[i], &v.stats.replies[i], v.stats.errors[i]));
  }
  return {200, out + "]}"};
}

HttpResponse Dashboard::Jobs(const HttpRequest& req) const {
  auto page = PageOf(req);
  if (!page.ok()) return ErrorFor(page.status());
  struct Both {
    rpc::GetJobsReply drivers;
    std::vector<rpc::JobSubmission> submitted;
    // An alive node's host -> its id; "" for a host with several.
    std::map<std::string, std::string> node_at;
  };
  GcsServer* server = server_;
  auto both = OnLoop<std::shared_ptr<Both>>(server, [server](auto done) {
    auto b = std::make_shared<Both>();
    server->HandleGetJobs({}, &b->drivers, [](absl::Status) {});
    b->submitted = server->submissions().List();
    for (const rpc::NodeInfo& n : AliveNodes(server, 0, INT64_MAX).nodes) {
      auto [it, fresh] = b->node_at.try_emplace(n.host(), n.node_id());
      if (!fresh) it->second.clear();
    }
    done(b);
  });
  if (!both.ok()) return ErrorFor(both.status());
  // One row per driver, with its submission's entrypoint; one per
  // submission whose driver has not registered (or never did).
  struct Row {
    int64_t start_ms;
    std::string json;
  };
  std::map<std::string, const rpc::JobSubmission*> by_id;
  for (const auto& s : (*both)->submitted) by_id[s.submission_id()] = &s;
  // A driver's node: the one it named, else its submission's (where its
  // entrypoint runs), else the one alive node at its address's host.
  auto driver_node = [&node_at = (*both)->node_at](
                         const rpc::JobInfo& j, const rpc::JobSubmission* s) {
    if (!j.node_id().empty()) return j.node_id();
    if (s != nullptr && !s->node_id().empty()) return s->node_id();
    std::string host = j.driver_address().substr(
        0, std::min(j.driver_address().rfind(':'), j.driver_address().size()));
    auto it = node_at.find(host);
    return it == node_at.end() ? std::string() : it->second;
  };
  std::vector<Row> rows;
  for (const rpc::JobInfo& j : (*both)->drivers.jobs()) {
    const rpc::JobSubmission* s = nullptr;
    if (auto it = by_id.find(j.submission_id()); it != by_id.end()) {
      s = it->second;
      by_id.erase(it);
    }
    rows.push_back(
        {j.start_ms(),
         absl::StrCat(
             R"({"job_id": ")", Hex(j.job_id()), R"(", "submission_id": )",
             JsonString(j.submission_id()), R"(, "state": ")",
             rpc::JobInfo::State_Name(j.state()), R"(", "status": )",
             s ? JsonString(rpc::JobSubmission::Status_Name(s->status()))
               : "null",
             R"(, "entrypoint": )", JsonString(s ? s->entrypoint() : ""),
             R"(, "start_ms": )", j.start_ms(), R"(, "end_ms": )", j.end_ms(),
             R"(, "driver_node_id": ")", Hex(driver_node(j, s)),
             R"(", "driver_pid": )", j.driver_pid(), R"(, "owner": )",
             JsonString(j.owner()), "}")});
  }
  for (const auto& [id, s] : by_id) {
    rows.push_back(
        {s->start_time_ms(),
         absl::StrCat(
             R"({"job_id": "", "submission_id": )", JsonString(id),
             R"(, "state": null, "status": )",
             JsonString(rpc::JobSubmission::Status_Name(s->status())),
             R"(, "entrypoint": )", JsonString(s->entrypoint()),
             R"(, "start_ms": )", s->start_time_ms(), R"(, "end_ms": )",
             s->end_time_ms(), R"(, "driver_node_id": ")", Hex(s->node_id()),
             R"(", "driver_pid": 0, "owner": )", JsonString(s->owner()), "}")});
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return a.start_ms > b.start_ms;
  });
  std::string out =
      absl::StrCat(R"({"total": )", rows.size(), R"(, "offset": )",
                   page->offset, R"(, "jobs": [)");
  for (int64_t i = page->offset;
       i < static_cast<int64_t>(rows.size()) && i < page->offset + page->limit;
       ++i) {
    absl::StrAppend(&out, i > page->offset ? ", " : "", rows[i].json);
  }
  return {200, out + "]}"};
}

HttpResponse Dashboard::Actors(const HttpRequest& req) const {
  auto page = PageOf(req);
  auto job = IdParam(req, "job");
  auto node = IdParam(req, "node");
  if (!page.ok()) return ErrorFor(page.status());
  if (!job.ok()) return ErrorFor(job.status());
  if (!node.ok()) return ErrorFor(node.status());
  std::string state = absl::AsciiStrToUpper(UrlParam(req.query, "state"));
  rpc::ActorInfo::State wanted{};
  if (!state.empty() && !rpc::ActorInfo::State_Parse(state, &wanted)) {
    return HttpServer::Error(
        400, "state must be PENDING, ALIVE, RESTARTING or DEAD");
  }
  std::string text = absl::AsciiStrToLower(UrlParam(req.query, "q"));
  std::string sort = UrlParam(req.query, "sort");
  bool desc = UrlParam(req.query, "desc") == "1";
  GcsServer* server = server_;
  auto list = AskLoop<rpc::ListActorsReply>(
      server, [server](rpc::ListActorsReply* reply, Done done) {
        server->HandleListActors({}, reply, std::move(done));
      });
  if (!list.ok()) return ErrorFor(list.status());
  std::map<std::string, int64_t> counts;
  std::vector<const rpc::ActorInfo*> match;
  for (const rpc::ActorInfo& a : list->actors()) {
    ++counts[rpc::ActorInfo::State_Name(a.state())];
    if (!state.empty() && a.state() != wanted) continue;
    if (!job->empty() && a.job_id() != *job) continue;
    if (!node->empty() && a.node_id() != *node) continue;
    if (!text.empty() &&
        !absl::StrContains(absl::AsciiStrToLower(a.class_name()), text) &&
        !absl::StrContains(absl::AsciiStrToLower(a.name()), text) &&
        !absl::StrContains(Hex(a.actor_id()), text)) {
      continue;
    }
    match.push_back(&a);
  }
  std::stable_sort(match.begin(), match.end(), [&](auto* a, auto* b) {
    return desc ? ActorBefore(*b, *a, sort) : ActorBefore(*a, *b, sort);
  });
  std::string c = "{";
  for (const auto& [s, n] : counts) {
    absl::StrAppend(&c, c.size() > 1 ? ", " : "", "\"", s, "\": ", n);
  }
  std::string out =
      absl::StrCat(R"({"total": )", match.size(), R"(, "counts": )", c, "}",
                   R"(, "erased_dead": )", list->erased_dead(),
                   R"(, "offset": )", page->offset, R"(, "actors": [)");
  for (int64_t i = page->offset;
       i < static_cast<int64_t>(match.size()) && i < page->offset + page->limit;
       ++i) {
    absl::StrAppend(&out, i > page->offset ? ", " : "", ActorJson(*match[i]));
  }
  return {200, out + "]}"};
}

HttpResponse Dashboard::Actor(const std::string& id) const {
  auto actor_id = IdFromHex(id, "the actor id");
  if (!actor_id.ok()) return ErrorFor(actor_id.status());
  rpc::GetActorRequest ask;
  ask.set_actor_id(*actor_id);
  GcsServer* server = server_;
  struct Found {
    rpc::GetActorReply got;
    rpc::Resources resources;  // what it holds, or asks for
  };
  auto found = OnLoop<std::shared_ptr<Found>>(server, [server, ask](auto done) {
    auto f = std::make_shared<Found>();
    server->HandleGetActor(
        ask, &f->got, [server, f, done, id = ask.actor_id()](absl::Status s) {
          if (!s.ok()) return done(s);
          if (auto a = ActorId::FromBinary(id); a.ok()) {
            f->resources = server->actors().ResourcesOf(*a);
          }
          done(f);
        });
  });
  if (!found.ok()) {
    if (found.status().code() != absl::StatusCode::kNotFound &&
        found.status().code() != absl::StatusCode::kInvalidArgument) {
      return ErrorFor(found.status());
    }
    return HttpServer::Error(
        404, absl::StrCat("no actor ", id, " (erased, or never known)"));
  }
  const rpc::ActorInfo& actor = (*found)->got.actor();
  rpc::ListTasksRequest calls;
  calls.set_limit(50);
  rpc::StateFilter* f = calls.add_filters();
  f->set_key("actor_id");
  f->set_op("=");
  f->set_value(id);
  rpc::ListTasksReply tasks;
  if (auto s = server_->tasks().List(calls, &tasks); !s.ok()) {
    return ErrorFor(s);
  }
  std::string out =
      absl::StrCat(R"({"actor": )", ActorJson(actor), R"(, "resources": )",
                   ResourcesJson((*found)->resources), R"(, "calls_total": )",
                   tasks.total(), R"(, "calls": [)");
  for (int i = 0; i < tasks.tasks_size(); ++i) {
    absl::StrAppend(&out, i ? ", " : "", TaskJson(tasks.tasks(i)));
  }
  return {200, out + "]}"};
}

HttpResponse Dashboard::Tasks(const HttpRequest& req) const {
  auto page = PageOf(req);
  if (!page.ok()) return ErrorFor(page.status());
  rpc::ListTasksRequest list;
  for (const char* key : {"job_id", "state", "name", "actor_id", "node_id"}) {
    std::string v = UrlParam(req.query, key);
    if (v.empty()) continue;
    rpc::StateFilter* f = list.add_filters();
    f->set_key(key);
    f->set_op("=");
    f->set_value(v);
  }
  list.set_limit(page->offset + page->limit);
  rpc::ListTasksReply reply;
  if (auto s = server_->tasks().List(list, &reply); !s.ok()) {
    return ErrorFor(s);
  }
  std::string out = absl::StrCat(
      R"({"total": )", reply.total(), R"(, "evicted": )", reply.evicted(),
      R"(, "dropped_events": )", reply.dropped_events(), R"(, "offset": )",
      page->offset, R"(, "tasks": [)");
  for (int64_t i = page->offset; i < reply.tasks_size(); ++i) {
    absl::StrAppend(&out, i > page->offset ? ", " : "",
                    TaskJson(reply.tasks(i)));
  }
  return {200, out + "]}"};
}

HttpResponse Dashboard::TaskSummary(const HttpRequest& req) const {
  auto job = IdParam(req, "job_id");
  if (!job.ok()) return ErrorFor(job.status());
  rpc::SummarizeTasksRequest ask;
  ask.set_job_id(*job);
  rpc::SummarizeTasksReply reply;
  server_->tasks().Summarize(ask, &reply);
  std::string out = absl::StrCat(R"({"evicted": )", reply.evicted(),
                                 R"(, "dropped_events": )",
                                 reply.dropped_events(), R"(, "functions": [)");
  for (int i = 0; i < reply.functions_size(); ++i) {
    const rpc::TaskSummary& f = reply.functions(i);
    std::map<std::string, int64_t> sorted(f.states().begin(), f.states().end());
    std::string states = "{";
    for (const auto& [s, n] : sorted) {
      absl::StrAppend(&states, states.size() > 1 ? ", " : "", JsonString(s),
                      ": ", n);
    }
    absl::StrAppend(&out, i ? ", " : "", R"({"name": )", JsonString(f.name()),
                    R"(, "type": ")", rpc::TaskEvent::Type_Name(f.type()),
                    R"(", "states": )", states, "}", R"(, "run_samples": )",
                    f.run_samples(), R"(, "run_p50_ms": )",
                    JsonNumber(f.run_p50_ms()), R"(, "run_p95_ms": )",
                    JsonNumber(f.run_p95_ms()), R"(, "run_p99_ms": )",
                    JsonNumber(f.run_p99_ms()), R"(, "queued_p50_ms": )",
                    JsonNumber(f.queued_p50_ms()), R"(, "queued_p95_ms": )",
                    JsonNumber(f.queued_p95_ms()), R"(, "queued_p99_ms": )",
                    JsonNumber(f.queued_p99_ms()), "}");
  }
  return {200, out + "]}"};
}

HttpResponse Dashboard::PlacementGroups() const {
  GcsServer* server = server_;
  auto list = AskLoop<rpc::ListPlacementGroupsReply>(
      server, [server](rpc::ListPlacementGroupsReply* reply, Done done) {
        server->HandleListPlacementGroups({}, reply, std::move(done));
      });
  if (!list.ok()) return ErrorFor(list.status());
  std::string out = R"({"placement_groups": [)";
  for (int i = 0; i < list->groups_size(); ++i) {
    const rpc::PlacementGroupInfo& g = list->groups(i);
    std::string bundles = "[";
    for (int b = 0; b < g.bundles_size(); ++b) {
      absl::StrAppend(&bundles, b ? ", " : "", R"({"resources": )",
                      ResourcesJson(g.bundles(b)), R"(, "node_id": ")",
                      b < g.bundle_nodes_size() ? Hex(g.bundle_nodes(b)) : "",
                      "\"}");
    }
    absl::StrAppend(
        &out, i ? ", " : "", R"({"pg_id": ")", Hex(g.pg_id()), R"(", "name": )",
        JsonString(g.name()), R"(, "strategy": ")",
        rpc::PlacementGroupInfo::Strategy_Name(g.strategy()),
        R"(", "state": ")", rpc::PlacementGroupInfo::State_Name(g.state()),
        R"(", "job_id": ")", Hex(g.job_id()), R"(", "message": )",
        JsonString(g.message()), R"(, "bundles": )", bundles, "]}");
  }
  return {200, out + "]}"};
}

HttpResponse Dashboard::Objects(const HttpRequest& req) const {
  // The cluster page's nodes carry their stores; this adds the largest
  // objects of each, with their references as their owners count them.
  auto page = PageOf(req);
  if (!page.ok()) return ErrorFor(page.status());
  GcsServer* server = server_;
  Paging p = *page;
  struct View {
    std::vector<rpc::NodeInfo> nodes;
    GcsServer::NodeStatsReplies stats;
    // Object id (binary) -> its references, or why they are not known.
    absl::flat_hash_map<std::string, rpc::ObjectReferences> refs;
    absl::flat_hash_map<std::string, std::string> refs_errors;
  };
  auto view = OnLoop<std::shared_ptr<View>>(server, [server, p](auto done) {
    auto v = std::make_shared<View>();
    v->nodes = AliveNodes(server, p.offset, p.limit).nodes;
    server->AskNodeStats(IdsOf(v->nodes), [server, v, done](auto r) {
      v->stats = std::move(r);
      std::vector<std::pair<std::string, std::vector<std::string>>> asks;
      absl::flat_hash_map<std::string, size_t> owner_at;
      for (const rpc::GetNodeStatsReply& s : v->stats.replies) {
        for (const rpc::ObjectSummary& o : s.largest_objects()) {
          auto [it, fresh] = owner_at.try_emplace(o.owner(), asks.size());
          if (fresh) asks.push_back({o.owner(), {}});
          asks[it->second].second.push_back(o.object_id());
        }
      }
      server->AskReferences(asks, [v, asks, done](auto refs) {
        for (size_t i = 0; i < asks.size(); ++i) {
          if (!refs.errors[i].empty()) {
            for (const std::string& id : asks[i].second) {
              v->refs_errors[id] =
                  absl::StrCat("its owner did not answer: ", refs.errors[i]);
            }
            continue;
          }
          for (const rpc::ObjectReferences& r : refs.replies[i].objects()) {
            if (r.owned()) {
              v->refs[r.object_id()] = r;
            } else {
              v->refs_errors[r.object_id()] = "its owner no longer holds it";
            }
          }
        }
        done(v);
      });
    });
  });
  if (!view.ok()) return ErrorFor(view.status());
  const View& v = **view;
  std::string out = absl::StrCat(R"({"offset": )", p.offset, R"(, "nodes": [)");
  for (size_t i = 0; i < v.stats.replies.size(); ++i) {
    const rpc::GetNodeStatsReply& s = v.stats.replies[i];
    std::string largest = "[";
    for (const rpc::ObjectSummary& o : s.largest_objects()) {
      std::string refs = "null";
      if (auto r = v.refs.find(o.object_id()); r != v.refs.end()) {
        refs = absl::StrCat(R"({"total": )", r->second.total(),
                            R"(, "borrowers": )", r->second.borrowers(),
                            R"(, "borrowed_units": )",
                            r->second.borrowed_units(), "}");
      }
      auto why = v.refs_errors.find(o.object_id());
      absl::StrAppend(
          &largest, largest.size() > 1 ? ", " : "", R"({"object_id": ")",
          Hex(o.object_id()), R"(", "size": )", o.size(), R"(, "owner": )",
          JsonString(o.owner()), R"(, "primary": )",
          o.primary() ? "true" : "false", R"(, "pinned": )",
          o.pinned() ? "true" : "false", R"(, "references": )", refs,
          R"(, "references_error": )",
          why == v.refs_errors.end() ? "null" : JsonString(why->second), "}");
    }
    absl::StrAppend(&out, i ? ", " : "",
                    NodeJson(v.nodes[i], &s, v.stats.errors[i]));
    out.pop_back();  // the node's closing brace: its objects go inside
    absl::StrAppend(&out, R"(, "largest_objects": )", largest, "]}");
  }
  return {200, out + "]}"};
}

HttpResponse Dashboard::Serve() const {
  // The serve controller puts its status in the KV once a second while it
  // changes (loom/serve/_controller.py), and serve.shutdown deletes it.
  rpc::KvGetRequest ask;
  ask.set_ns("serve");
  ask.set_key("status");
  GcsServer* server = server_;
  auto got = AskLoop<rpc::KvGetReply>(
      server, [server, ask](rpc::KvGetReply* reply, Done done) {
        server->HandleKvGet(ask, reply, std::move(done));
      });
  if (!got.ok()) return ErrorFor(got.status());
  if (!got->found()) return {200, R"({"serving": false})"};
  google::protobuf::Struct parsed;  // anyone in a job may write the key
  if (!google::protobuf::util::JsonStringToMessage(got->value(), &parsed)
           .ok()) {
    return {200, R"({"serving": true, "error": "the serve controller's )"
                 R"(status in the head's KV is not JSON"})"};
  }
  return {200,
          absl::StrCat(R"({"serving": true, "status": )", got->value(), "}")};
}

HttpResponse Dashboard::Logs(const HttpRequest& req) const {
  // One node's files (?node=), or a page of alive nodes' (?offset=, 10 a
  // page): whose name holds ?q=, newest first, at most ?files= of them per
  // node (a node with 1,000 actors has thousands).
  auto node = IdParam(req, "node");
  auto limit = IntParam(req, "files", 50, 1, kMaxPage);
  auto offset = IntParam(req, "offset", 0, 0, INT32_MAX);
  if (!node.ok()) return ErrorFor(node.status());
  if (!limit.ok()) return ErrorFor(limit.status());
  if (!offset.ok()) return ErrorFor(offset.status());
  std::string text = UrlParam(req.query, "q");
  GcsServer* server = server_;
  struct Listed {
    rpc::ListLogsReply list;
    int64_t alive = 1;
  };
  auto listed = OnLoop<std::shared_ptr<Listed>>(
      server, [server, id = *node, from = *offset](auto done) {
        auto l = std::make_shared<Listed>();
        auto answer = [l, done](absl::Status s) {
          if (s.ok()) return done(l);
          done(s);
        };
        if (!id.empty()) {
          rpc::ListLogsRequest ask;
          ask.set_node_id(id);
          return server->HandleListLogs(ask, &l->list, answer);
        }
        AlivePage page = AliveNodes(server, from, kLogNodesPerPage);
        l->alive = page.alive;
        server->ListLogsOf(IdsOf(page.nodes), &l->list, answer);
      });
  if (!listed.ok()) return ErrorFor(listed.status());
  const rpc::ListLogsReply* list = &(*listed)->list;
  int64_t alive = (*listed)->alive;
  std::string out = absl::StrCat(R"({"alive_nodes": )", alive,
                                 R"(, "offset": )", *offset, R"(, "nodes": [)");
  for (int i = 0; i < list->nodes_size(); ++i) {
    const rpc::NodeLogFiles& n = list->nodes(i);
    std::vector<const rpc::LogFile*> match;
    for (const rpc::LogFile& f : n.files()) {
      if (text.empty() || absl::StrContains(f.name(), text)) {
        match.push_back(&f);
      }
    }
    std::stable_sort(match.begin(), match.end(), [](auto* a, auto* b) {
      return a->mtime_ms() > b->mtime_ms();
    });
    std::string files = "[";
    for (int64_t k = 0; k < static_cast<int64_t>(match.size()) && k < *limit;
         ++k) {
      absl::StrAppend(&files, k ? ", " : "", R"({"name": )",
                      JsonString(match[k]->name()), R"(, "size": )",
                      match[k]->size(), R"(, "mtime_ms": )",
                      match[k]->mtime_ms(), "}");
    }
    absl::StrAppend(&out, i ? ", " : "", R"({"node_id": ")", Hex(n.node_id()),
                    R"(", "host": )", JsonString(n.host()), R"(, "error": )",
                    JsonString(n.error()), R"(, "total_files": )",
                    n.files_size(), R"(, "matching": )", match.size(),
                    R"(, "files": )", files, "]}");
  }
  return {200, out + "]}"};
}

HttpResponse Dashboard::Log(const HttpRequest& req) const {
  auto node = IdParam(req, "node");
  // offset < 0: that many bytes before the end (the default: the last 64 KiB).
  auto offset =
      IntParam(req, "offset", -(64 << 10), INT64_MIN / 2, INT64_MAX / 2);
  std::string name = UrlParam(req.query, "name");
  if (!node.ok()) return ErrorFor(node.status());
  if (!offset.ok()) return ErrorFor(offset.status());
  if (node->empty() || name.empty()) {
    return HttpServer::Error(400, "node and name are needed");
  }
  rpc::ReadLogRequest ask;
  ask.set_node_id(*node);
  ask.mutable_read()->set_name(name);
  ask.mutable_read()->set_offset(*offset);
  ask.mutable_read()->set_max_bytes(kMaxLogRead);
  GcsServer* server = server_;
  auto read = AskLoop<rpc::ReadLogReply>(
      server, [server, ask](rpc::ReadLogReply* reply, Done done) {
        server->HandleReadLog(ask, reply, std::move(done));
      });
  if (!read.ok()) return ErrorFor(read.status());
  const rpc::ReadLogFileReply& r = read->read();
  return {200, absl::StrCat(R"({"data": )", JsonString(r.data()),
                            R"(, "offset": )", r.offset(), R"(, "next": )",
                            r.offset() + static_cast<int64_t>(r.data().size()),
                            R"(, "size": )", r.size(), "}")};
}

}  // namespace loom::gcs
