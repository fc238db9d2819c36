// tests/unit/submitter_harness.h
//
// SubmitterHarness: what a TaskSubmitter unit test runs one on: an event
// loop, the object table and counters, and a FakeClientPool through which
// it calls the fakes of tests/unit/fake_peers.h. A fixture declares it
// after its fakes, so that the submitter stops before they go.
//
//   SubmitterHarness h{"my-test"};
//   h.pool.Serve("10.0.0.1:7001", &raylet);
//   h.loop.Start();
//   h.Start(h.Options("10.0.0.1:7001"));
//   ObjectId ret = h.SubmitNoop(/*max_retries=*/3);
#ifndef LOOM_TESTS_UNIT_SUBMITTER_HARNESS_H_
#define LOOM_TESTS_UNIT_SUBMITTER_HARNESS_H_

#include <memory>
#include <string>

#include "runtime/task_submitter.h"
#include "tests/unit/fake_client_pool.h"

namespace loom {

struct SubmitterHarness {
  explicit SubmitterHarness(const char* name) : loop(name) {}
  ~SubmitterHarness() {
    if (submitter) submitter->Shutdown();
    loop.Stop();
  }

  // A submitter of job 1 whose own raylet is `local_raylet`.
  TaskSubmitter::Options Options(const std::string& local_raylet) {
    TaskSubmitter::Options options;
    options.loop = &loop;
    options.objects = &objects;
    options.counters = &counters;
    options.local_raylet = local_raylet;
    options.job = JobId::FromInt(1);
    options.worker_id = WorkerId::FromRandom();
    options.self_address = "10.0.0.9:5000";
    options.clients = &pool;
    return options;
  }
  void Start(const TaskSubmitter::Options& options) {
    submitter = std::make_unique<TaskSubmitter>(options);
  }

  // Submits a no-op task of job 1 needing 1 CPU (SPREAD when `spread`);
  // returns its return object's id.
  // max_calls > 0: a worker runs at most that many of them.
  ObjectId SubmitNoop(int max_retries, bool spread = false, int max_calls = 0) {
    TaskId task = TaskId::ForChild(TaskId::ForDriver(JobId::FromInt(1)), ++n);
    rpc::TaskSpec spec;
    spec.set_task_id(task.Binary());
    spec.set_job_id(JobId::FromInt(1).Binary());
    spec.set_function_name("Noop");
    spec.set_max_retries(max_retries);
    (*spec.mutable_resources()->mutable_quantities())["CPU"] = 1;
    if (spread) {
      spec.mutable_strategy()->set_kind(rpc::SchedulingStrategy::SPREAD);
    }
    ObjectId ret = ObjectId::ForReturn(task, 1);
    objects.AddPending(ret);
    submitter->Submit(std::move(spec),
                      spread ? "CPU:1|Noop|SPREAD" : "CPU:1|Noop", max_calls);
    return ret;
  }

  FakeClientPool pool;
  EventLoop loop;
  ObjectTable objects;
  TaskCounters counters;
  std::unique_ptr<TaskSubmitter> submitter;
  uint32_t n = 0;
};

}  // namespace loom

#endif  // LOOM_TESTS_UNIT_SUBMITTER_HARNESS_H_
