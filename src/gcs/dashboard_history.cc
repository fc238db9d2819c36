// The dashboard's history (dashboard.h, cluster_history.h): a sample of the
// cluster every 10 s, taken on the head's loop when it wakes anyway, and
// the JSON the charts read.
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "src/gcs/dashboard.h"
#include "src/gcs/gcs_server.h"
#include "src/gcs/http_edge.h"

namespace loom::gcs {
void Dashboard::StartHistory() {
  server_->loop().Post([this] { Sample(); });
}

void Dashboard::ArmSample() {
  server_->loop().PostLazy(options_.sample_every, options_.sample_every / 2,
                           [this] { Sample(); });
}

void Dashboard::Sample() {
  HistorySample s;
  s.t_ms = absl::ToUnixMillis(absl::Now());
  rpc::SummarizeTasksReply tasks;
  server_->tasks().Summarize({}, &tasks);
  for (const rpc::TaskSummary& f : tasks.functions()) {
    auto count = [&f](const char* state) {
      auto it = f.states().find(state);
      return it == f.states().end() ? 0 : it->second;
    };
    s.tasks_finished += count("FINISHED");
    s.tasks_failed += count("FAILED");
  }
  rpc::GetClusterStatusReply status;
  server_->HandleGetClusterStatus({}, &status, [](absl::Status) {});
  std::vector<std::string> alive;
  for (const rpc::NodeInfo& n : status.nodes()) {
    if (!n.alive()) continue;
    alive.push_back(n.node_id());
    auto q = [](const rpc::Resources& r, const char* name) {
      auto it = r.quantities().find(name);
      return it == r.quantities().end() ? 0.0 : it->second;
    };
    s.cpu_total += q(n.total(), "CPU");
    s.cpu_used += q(n.total(), "CPU") - q(n.available(), "CPU");
    s.gpu_total += q(n.total(), "GPU");
    s.gpu_used += q(n.total(), "GPU") - q(n.available(), "GPU");
  }
  s.nodes_alive = static_cast<int64_t>(alive.size());
  bool watched = s.t_ms - last_looked_ms_.load() <
                 absl::ToInt64Milliseconds(options_.watched_for);
  if (!watched || alive.empty()) {
    history_.Add(s);
    return ArmSample();
  }
  server_->AskNodeStats(alive,
                        [this, s](GcsServer::NodeStatsReplies r) mutable {
                          int gpus = 0;
                          for (size_t i = 0; i < r.replies.size(); ++i) {
                            if (!r.errors[i].empty()) continue;
                            const rpc::GetNodeStatsReply& n = r.replies[i];
                            s.machine = true;
                            s.mem_used += n.host().mem_used();
                            s.mem_total += n.host().mem_total();
                            s.store_used += n.store_used();
                            s.store_capacity += n.store_capacity();
                            for (const rpc::GpuStats& g : n.host().gpus()) {
                              s.gpu_percent += g.utilization_percent();
                              ++gpus;
                            }
                          }
                          if (gpus > 0) s.gpu_percent /= gpus;
                          history_.Add(s);
                          ArmSample();
                        });
}

HttpResponse Dashboard::History(const HttpRequest& req) const {
  int64_t since = 0;
  std::string given = UrlParam(req.query, "since_ms");
  if (!given.empty() && !absl::SimpleAtoi(given, &since)) {
    return HttpServer::Error(400, "since_ms must be a number (Unix ms)");
  }
  std::string out = R"({"samples": [)";
  bool first = true;
  for (const HistorySample& s : history_.Since(since)) {
    absl::StrAppend(
        &out, first ? "" : ", ", R"({"t_ms": )", s.t_ms,
        R"(, "tasks_finished": )", s.tasks_finished, R"(, "tasks_failed": )",
        s.tasks_failed, R"(, "nodes_alive": )", s.nodes_alive,
        R"(, "cpu_used": )", JsonNumber(s.cpu_used), R"(, "cpu_total": )",
        JsonNumber(s.cpu_total), R"(, "gpu_used": )", JsonNumber(s.gpu_used),
        R"(, "gpu_total": )", JsonNumber(s.gpu_total));
    if (s.machine) {
      absl::StrAppend(&out, R"(, "mem_used": )", JsonNumber(s.mem_used),
                      R"(, "mem_total": )", JsonNumber(s.mem_total),
                      R"(, "store_used": )", JsonNumber(s.store_used),
                      R"(, "store_capacity": )", JsonNumber(s.store_capacity),
                      R"(, "gpu_percent": )", JsonNumber(s.gpu_percent));
    }
    out += "}";
    first = false;
  }
  return {200, out + "]}"};
}

}  // namespace loom::gcs
