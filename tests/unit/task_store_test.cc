// TaskStore: merging what owners and executors report, states, the bound
// per job (ended records go first), filters, and per-function summaries.
#include "src/gcs/task_store.h"

#include <gtest/gtest.h>

#include "src/common/state_filter.h"
#include "src/gcs/cluster_history.h"
#include "src/gcs/head_metrics.h"

namespace loom::gcs {
namespace {

TaskId Task(uint32_t job, uint32_t n) {
  return TaskId::ForChild(TaskId::ForDriver(JobId::FromInt(job)), n);
}

rpc::TaskEvent Event(const TaskId& id, const std::string& name) {
  rpc::TaskEvent e;
  e.set_task_id(id.Binary());
  e.set_job_id(id.Job().Binary());
  e.set_name(name);
  return e;
}

void Report(TaskStore& store, std::vector<rpc::TaskEvent> events) {
  rpc::ReportTaskEventsRequest req;
  for (auto& e : events) *req.add_events() = std::move(e);
  store.Report(req);
}

rpc::ListTasksReply List(const TaskStore& store,
                         std::vector<std::string> filters, int64_t limit = 0) {
  rpc::ListTasksRequest req;
  for (const auto& f : filters) *req.add_filters() = *ParseFilter(f);
  req.set_limit(limit);
  rpc::ListTasksReply reply;
  EXPECT_TRUE(store.List(req, &reply).ok());
  return reply;
}

TEST(TaskStore, MergesOwnerAndExecutorReportsInAnyOrder) {
  TaskStore store({});
  TaskId id = Task(1, 1);
  rpc::TaskEvent run = Event(id, "f");
  run.set_exec_start_us(1100);
  run.set_run_start_us(1200);
  run.set_run_end_us(3200);
  run.set_worker_id(std::string(16, 'w'));
  run.set_node_id(std::string(16, 'n'));
  run.set_pid(42);
  Report(store, {run});  // the executor's report came first
  EXPECT_EQ(List(store, {}).tasks(0).state(), "RUNNING");
  rpc::TaskEvent owner = Event(id, "f");
  owner.set_submitted_us(1000);
  owner.set_args_ready_us(1000);
  owner.set_pushed_us(1050);
  owner.set_finished_us(3300);
  Report(store, {owner});
  auto reply = List(store, {});
  ASSERT_EQ(reply.tasks_size(), 1);
  const rpc::TaskEvent& t = reply.tasks(0);
  EXPECT_EQ(t.state(), "FINISHED");
  EXPECT_EQ(t.pid(), 42);
  EXPECT_EQ(t.submitted_us(), 1000);
  EXPECT_EQ(t.run_end_us(), 3200);
  rpc::SummarizeTasksReply summary;
  store.Summarize({}, &summary);
  ASSERT_EQ(summary.functions_size(), 1);
  EXPECT_EQ(summary.functions(0).states().at("FINISHED"), 1);
  EXPECT_EQ(summary.functions(0).run_samples(), 1);
  EXPECT_NEAR(summary.functions(0).run_p50_ms(), 2.0, 0.1);
  EXPECT_NEAR(summary.functions(0).queued_p50_ms(), 0.2, 0.02);
}

TEST(TaskStore, ARetryStartsANewAttemptAndFailureKeepsItsError) {
  TaskStore store({});
  TaskId id = Task(1, 1);
  rpc::TaskEvent first = Event(id, "g");
  first.set_submitted_us(10);
  first.set_pushed_us(20);
  first.set_failed_us(30);
  first.set_retried(true);
  first.set_error_kind(rpc::ErrorInfo::WORKER_CRASHED);
  Report(store, {first});
  EXPECT_EQ(List(store, {}).tasks(0).state(), "PENDING_NODE_ASSIGNMENT");
  rpc::TaskEvent second = Event(id, "g");
  second.set_attempt(1);
  second.set_failed_us(50);
  second.set_error_kind(rpc::ErrorInfo::TASK_ERROR);
  second.set_error_message("ValueError: no");
  Report(store, {second, first});  // the stale attempt changes nothing
  auto t = List(store, {}).tasks(0);
  EXPECT_EQ(t.attempt(), 1);
  EXPECT_EQ(t.state(), "FAILED");
  EXPECT_EQ(t.error_kind(), rpc::ErrorInfo::TASK_ERROR);
  EXPECT_EQ(t.error_message(), "ValueError: no");
  EXPECT_EQ(t.submitted_us(), 10);  // kept across attempts
  EXPECT_EQ(List(store, {"error_type=task_error"}).total(), 1);
}

TEST(TaskStore, BoundEvictsEndedRecordsFirstAndSaysHowMany) {
  TaskStore store({.max_tasks_per_job = 3});
  rpc::TaskEvent running = Event(Task(1, 1), "slow");
  running.set_run_start_us(5);
  Report(store, {running});
  for (uint32_t i = 2; i <= 6; ++i) {
    rpc::TaskEvent done = Event(Task(1, i), "fast");
    done.set_finished_us(i);
    Report(store, {done});
  }
  auto reply = List(store, {});
  EXPECT_EQ(reply.total(), 3);
  EXPECT_EQ(reply.evicted(), 3);
  EXPECT_EQ(List(store, {"name=slow"}).total(), 1);  // still running: kept
  EXPECT_EQ(store.size(), 3);
  rpc::SummarizeTasksReply summary;
  store.Summarize({}, &summary);
  int64_t finished = 0;
  for (const auto& f : summary.functions()) {
    if (f.name() == "fast") finished = f.states().at("FINISHED");
  }
  EXPECT_EQ(finished, 5);  // counters outlive the records
}

TEST(TaskStore, FiltersLimitsAndNewestFirst) {
  TaskStore store({});
  for (uint32_t job = 1; job <= 2; ++job) {
    for (uint32_t i = 1; i <= 5; ++i) {
      rpc::TaskEvent e = Event(Task(job, i), i % 2 ? "odd" : "even");
      e.set_submitted_us(i);
      if (i == 5) e.set_finished_us(9);
      Report(store, {e});
    }
  }
  auto all = List(store, {}, 3);
  EXPECT_EQ(all.total(), 10);
  ASSERT_EQ(all.tasks_size(), 3);
  EXPECT_EQ(all.tasks(0).task_id(), Task(2, 5).Binary());
  EXPECT_EQ(List(store, {"name=odd"}).total(), 6);
  EXPECT_EQ(
      List(store, {"name!=odd", "job_id=" + JobId::FromInt(1).Hex()}).total(),
      2);
  EXPECT_EQ(List(store, {"state=finished"}).total(), 2);
  std::string prefix = Task(1, 3).Hex().substr(0, 20);
  EXPECT_EQ(List(store, {"task_id=" + prefix}).total(), 1);
  rpc::ListTasksRequest bad;
  *bad.add_filters() = *ParseFilter("colour=red");
  rpc::ListTasksReply reply;
  absl::Status s = store.List(bad, &reply);
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_NE(s.message().find("unknown filter key 'colour'"), std::string::npos);
  rpc::ListTasksRequest bad_state;
  *bad_state.add_filters() = *ParseFilter("state=SLEEPING");
  EXPECT_TRUE(absl::IsInvalidArgument(store.List(bad_state, &reply)));
}

TEST(TaskStore, MalformedIdsAreCountedNotStored) {
  TaskStore store({});
  rpc::ReportTaskEventsRequest req;
  req.add_events()->set_task_id("short");
  req.set_dropped(4);
  store.Report(req);
  EXPECT_EQ(store.size(), 0);
  EXPECT_EQ(List(store, {}).dropped_events(), 5);
}

TEST(TaskStore, MetricsCountByStateAndBucketRunTimesOverJobs) {
  TaskStore store({});
  int64_t run_us[] = {2000, 300000};  // 2 ms and 0.3 s
  for (uint32_t job : {1, 2}) {
    rpc::TaskEvent e = Event(Task(job, 1), "f");
    e.set_submitted_us(1000);
    e.set_run_start_us(1000);
    e.set_run_end_us(1000 + run_us[job - 1]);
    e.set_finished_us(2000 + run_us[job - 1]);
    Report(store, {e});
  }
  Report(store, {Event(Task(1, 2), "g")});  // just submitted
  MetricFamilies families = store.Collect();
  ASSERT_EQ(families.size(), 3u);
  std::map<std::string, double> tasks;
  for (const auto& m : families[0].metric) {
    tasks[m.label[0].value + "/" + m.label[1].value] = m.gauge.value;
  }
  EXPECT_EQ(tasks["f/FINISHED"], 2);
  EXPECT_EQ(tasks["g/PENDING_ARGS_AVAIL"], 1);
  EXPECT_EQ(families[1].name, "loom_task_run_seconds");
  const auto& f = families[1].metric[0];
  EXPECT_EQ(f.label[0].value, "f");
  EXPECT_EQ(f.histogram.sample_count, 2u);
  EXPECT_NEAR(f.histogram.sample_sum, 0.302, 1e-9);
  for (const auto& b : f.histogram.bucket) {
    uint64_t want = b.upper_bound < 0.0025 ? 0 : b.upper_bound < 0.5 ? 1 : 2;
    EXPECT_EQ(b.cumulative_count, want) << "le=" << b.upper_bound;
  }
}

TEST(HeadMetrics, TheDiscoveryFileListsTheHeadAndAliveNodes) {
  rpc::NodeInfo a, b, c;
  a.set_node_id(std::string(28, '\x01'));
  a.set_host("10.0.0.2");
  a.set_metrics_port(8081);
  a.set_alive(true);
  b = a;
  b.set_alive(false);
  c = a;
  c.set_host("::1");
  std::string json = HeadMetrics::DiscoveryJson({a, b, c}, "10.0.0.1:8080");
  EXPECT_NE(
      json.find(
          R"({"targets": ["10.0.0.1:8080"], "labels": {"loom_component": "head"}})"),
      std::string::npos)
      << json;
  EXPECT_NE(
      json.find(
          R"("10.0.0.2:8081"], "labels": {"loom_component": "raylet", "node_id": "0101)"),
      std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("[::1]:8081")"), std::string::npos) << json;
  EXPECT_EQ(json.find("10.0.0.2", json.find("10.0.0.2") + 1), std::string::npos)
      << "the dead node is not listed: " << json;
  EXPECT_EQ(HeadMetrics::DiscoveryJson({}, ""), "[]\n");
}

TEST(StateFilter, ParsesAndMatches) {
  EXPECT_FALSE(ParseFilter("novalue").ok());
  EXPECT_FALSE(ParseFilter("=x").ok());
  auto f = ParseFilter("node_id!=ab12");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->op(), "!=");
  EXPECT_FALSE(FilterMatches(*f, "AB12ffff"));  // an id prefix, any case
  EXPECT_TRUE(FilterMatches(*f, "cd"));
  auto g = ParseFilter("state=alive");
  EXPECT_TRUE(RowMatches({{"state", "ALIVE"}}, {*g}));
  EXPECT_FALSE(RowMatches({{"state", "ALIVEX"}}, {*g}));
}

}  // namespace
}  // namespace loom::gcs

namespace loom::gcs {
namespace {

// The dashboard's history keeps its last `capacity` samples, oldest first.
TEST(ClusterHistory, KeepsTheLastSamplesAndAnswersFromATime) {
  ClusterHistory history(3);
  for (int64_t t = 1; t <= 5; ++t) {
    HistorySample s;
    s.t_ms = t * 1000;
    s.tasks_finished = t;
    history.Add(s);
  }
  std::vector<HistorySample> all = history.Since(0);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all.front().t_ms, 3000);
  EXPECT_EQ(all.back().tasks_finished, 5);
  EXPECT_EQ(history.Since(4000).size(), 1u);
  EXPECT_TRUE(history.Since(5000).empty());
}

}  // namespace
}  // namespace loom::gcs
