// The state API at scale: a head holding 1,000,000 task records (10 jobs x
// 100,000, its default bound per job), fed through Gcs.ReportTaskEvents in
// batches as core workers feed it:
//   loom_list_tasks_limit100_1m_records        ListTasks, limit 100 (ms)
//   loom_list_tasks_filtered_1m_records        the same with a filter on
//                                              the function name: a scan
//                                              of every record (ms)
//   loom_cli_list_tasks_1m_records             `loom list tasks --limit
//                                              100`, the process and all
//                                              (ms)
//   loom_head_bytes_per_task_record            the head's RSS growth over
//                                              the records it holds
#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmarks/bench_cluster.h"
#include "benchmarks/bench_util.h"
#include "proto/gcs.grpc.pb.h"
#include "src/common/ids.h"
#include "src/common/rpc.h"

namespace loom::bench {
namespace {

constexpr int kJobs = 10;
constexpr int kTasksPerJob = 100000;
constexpr int kBatch = 10000;
constexpr int kCalls = 21;

// The pid of the loom-gcs whose command line mentions `root`.
pid_t HeadPid(const std::string& root) {
  DIR* proc = opendir("/proc");
  pid_t found = 0;
  while (dirent* e = proc ? readdir(proc) : nullptr) {
    pid_t pid = atoi(e->d_name);
    if (pid <= 0) continue;
    std::string cmd = ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
    if (cmd.find("loom-gcs") != std::string::npos &&
        cmd.find(root) != std::string::npos) {
      found = pid;
    }
  }
  if (proc) closedir(proc);
  if (found == 0) throw std::runtime_error("no loom-gcs found for " + root);
  return found;
}

int64_t RssBytes(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/statm"));
  int64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

void Fill(rpc::Gcs::Stub& head) {
  std::vector<std::string> nodes, workers;
  for (int i = 0; i < 8; ++i) {
    nodes.push_back(NodeId::FromRandom().Binary());
    workers.push_back(WorkerId::FromRandom().Binary());
  }
  int64_t t = 1'700'000'000'000'000;
  for (int job = 1; job <= kJobs; ++job) {
    TaskId driver = TaskId::ForDriver(JobId::FromInt(1000 + job));
    for (int start = 0; start < kTasksPerJob; start += kBatch) {
      rpc::ReportTaskEventsRequest req;
      for (int i = start; i < start + kBatch; ++i) {
        rpc::TaskEvent* e = req.add_events();
        e->set_task_id(TaskId::ForChild(driver, i + 1).Binary());
        e->set_job_id(JobId::FromInt(1000 + job).Binary());
        e->set_name(absl::StrCat("module.f", i % 20));
        e->set_submitted_us(t += 10);
        e->set_args_ready_us(t + 1);
        e->set_pushed_us(t + 5);
        e->set_exec_start_us(t + 50);
        e->set_run_start_us(t + 60);
        e->set_run_end_us(t + 60 + (i % 997) * 10);
        e->set_exec_end_us(t + 70 + (i % 997) * 10);
        e->set_finished_us(t + 80 + (i % 997) * 10);
        e->set_node_id(nodes[i % 8]);
        e->set_worker_id(workers[i % 8]);
        e->set_pid(10000 + i % 8);
      }
      rpc::Context ctx;
      rpc::SetTimeout(&ctx, 60000);
      rpc::ReportTaskEventsReply reply;
      grpc::Status s = head.ReportTaskEvents(&ctx, req, &reply);
      if (!s.ok()) throw std::runtime_error("report: " + s.error_message());
    }
  }
}

double ListMs(rpc::Gcs::Stub& head, const std::string& filter) {
  rpc::ListTasksRequest req;
  req.set_limit(100);
  if (!filter.empty()) {
    rpc::StateFilter* f = req.add_filters();
    f->set_key("name");
    f->set_op("=");
    f->set_value(filter);
  }
  std::vector<double> ms;
  for (int i = 0; i < kCalls; ++i) {
    rpc::Context ctx;
    rpc::SetTimeout(&ctx, 60000);
    rpc::ListTasksReply reply;
    int64_t start = NowNs();
    grpc::Status s = head.ListTasks(&ctx, req, &reply);
    ms.push_back(SecondsSince(start) * 1000);
    if (!s.ok() || reply.tasks_size() != 100 ||
        reply.total() < kJobs * kTasksPerJob / 20) {
      throw std::runtime_error("list: " + s.error_message());
    }
  }
  return Median(ms);
}

std::vector<Result> RunListTasks() {
  PrivateCluster cluster(1);
  std::string address = ReadFile(cluster.session_dir() + "/address");
  while (!address.empty() && isspace(address.back())) address.pop_back();
  std::string token = ReadFile(cluster.session_dir() + "/auth_token");
  while (!token.empty() && isspace(token.back())) token.pop_back();
  rpc::SetClusterToken(token);
  auto head = rpc::Gcs::NewStub(rpc::MakeChannel(address));
  pid_t pid = HeadPid(
      cluster.session_dir().substr(0, cluster.session_dir().rfind('/')));
  int64_t before = RssBytes(pid);
  Fill(*head);
  int64_t after = RssBytes(pid);
  double plain = ListMs(*head, "");
  double filtered = ListMs(*head, "f7");
  std::vector<double> cli;
  for (int i = 0; i < 7; ++i) {
    int64_t start = NowNs();
    int rc = RunCommand(
        {SelfDir() + "/loom", "list", "tasks", "--limit", "100", "--address",
         address, "--session-root",
         cluster.session_dir().substr(0, cluster.session_dir().rfind('/'))},
        "/dev/null");
    cli.push_back(SecondsSince(start) * 1000);
    if (rc != 0) throw std::runtime_error("loom list tasks failed");
  }
  return {
      {"loom_list_tasks_limit100_1m_records", plain, "ms"},
      {"loom_list_tasks_filtered_1m_records", filtered, "ms"},
      {"loom_cli_list_tasks_1m_records", Median(cli), "ms"},
      {"loom_head_bytes_per_task_record",
       static_cast<double>(after - before) / (kJobs * kTasksPerJob), "bytes"}};
}

}  // namespace

void AddStateBenchmarks(std::vector<Benchmark>* out) {
  out->push_back(
      {{"loom_list_tasks_limit100_1m_records",
        "loom_list_tasks_filtered_1m_records", "loom_cli_list_tasks_1m_records",
        "loom_head_bytes_per_task_record"},
       RunListTasks});
}

}  // namespace loom::bench
