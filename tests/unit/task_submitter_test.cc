// TaskSubmitter against a fake raylet and workers served in-process through
// a FakeClientPool: tasks reuse a lease that goes back when idle, a
// worker that dies has its task retried on a new lease (its channel
// dropped), and a task out of retries fails WORKER_CRASHED, or
// OUT_OF_MEMORY when the raylet says it killed the worker for memory; with
// max_calls a worker is returned stopped once it ran its share.
#include "runtime/task_submitter.h"

#include <gtest/gtest.h>

#include "tests/unit/fake_peers.h"
#include "tests/unit/submitter_harness.h"

namespace loom {
namespace {

constexpr char kRaylet[] = "10.0.0.1:7001";

class TaskSubmitterTest : public ::testing::Test {
 protected:
  TaskSubmitterTest() {
    h_.pool.Serve(kRaylet, &raylet_);
    h_.pool.Serve("10.0.0.1:9001", &workers_[0]);
    h_.pool.Serve("10.0.0.1:9002", &workers_[1]);
    h_.loop.Start();
    TaskSubmitter::Options options = h_.Options(kRaylet);
    options.lease_idle_timeout = absl::Milliseconds(300);
    h_.Start(options);
  }

  ObjectId Submit(int max_retries) { return h_.SubmitNoop(max_retries); }

  ObjectResult Get(const ObjectId& id) {
    auto results = h_.objects.Get({id}, absl::Now() + absl::Seconds(5));
    EXPECT_TRUE(results.has_value()) << "no result for " << id.Hex();
    return results ? (*results)[0] : ObjectResult{};
  }

  // Polls `cond` for up to 5 s.
  template <typename Cond>
  bool Eventually(Cond cond) {
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (!cond()) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return true;
  }

  FakeRaylet raylet_;
  FakeWorker workers_[2];
  SubmitterHarness h_{"submitter-test"};  // after the fakes
};

TEST_F(TaskSubmitterTest, TasksOneAfterAnotherShareALeaseThatGoesBackIdle) {
  for (int i = 0; i < 3; ++i) {
    ObjectId ret = Submit(3);
    ObjectResult r = Get(ret);
    ASSERT_FALSE(r.error) << r.error->message();
    ASSERT_NE(r.value, nullptr);
    EXPECT_EQ(*r.value, "ran " + ret.Task().Binary());
  }
  EXPECT_EQ(raylet_.leases(), 1);
  EXPECT_EQ(workers_[0].ran().size(), 3u);
  // Idle past lease_idle_timeout, the worker goes back healthy.
  EXPECT_TRUE(Eventually([&] { return !raylet_.returned().empty(); }));
  EXPECT_EQ(raylet_.returned(), std::vector<std::string>{"lease-1 returned"});
}

TEST_F(TaskSubmitterTest, MaxCallsStopsTheWorkerAfterItsShare) {
  // max_calls=2: the first lease's worker runs two tasks and is returned
  // stopped ("failed": the raylet kills it); the third task gets a new one.
  for (int i = 0; i < 3; ++i) {
    ObjectResult r = Get(h_.SubmitNoop(0, false, /*max_calls=*/2));
    ASSERT_FALSE(r.error) << r.error->message();
  }
  EXPECT_EQ(raylet_.leases(), 2);
  EXPECT_EQ(workers_[0].ran().size(), 2u);
  EXPECT_EQ(workers_[1].ran().size(), 1u);
  // Idle, the second goes back stopped too: no worker outlives its share.
  EXPECT_TRUE(Eventually([&] { return raylet_.returned().size() == 2; }));
  EXPECT_EQ(raylet_.returned(),
            (std::vector<std::string>{"lease-1 failed", "lease-2 failed"}));
}

TEST_F(TaskSubmitterTest, ATaskOnADeadWorkerIsRetriedOnANewLease) {
  workers_[0].Die();
  ObjectId ret = Submit(1);
  ObjectResult r = Get(ret);
  ASSERT_FALSE(r.error) << r.error->message();
  EXPECT_EQ(*r.value, "ran " + ret.Task().Binary());
  EXPECT_EQ(workers_[1].ran().size(), 1u);
  EXPECT_EQ(h_.counters.retried, 1);
  EXPECT_EQ(raylet_.returned().front(), "lease-1 failed");
  // The dead worker's channel was dropped: a new call would dial again.
  h_.pool.Channel("10.0.0.1:9001");
  EXPECT_EQ(h_.pool.channels_made("10.0.0.1:9001"), 2);
}

TEST_F(TaskSubmitterTest, ATaskOutOfRetriesFailsWorkerCrashed) {
  workers_[0].Die();
  ObjectResult r = Get(Submit(0));
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->kind(), rpc::ErrorInfo::WORKER_CRASHED);
  EXPECT_NE(r.error->message().find("0 retries are used up"), std::string::npos)
      << r.error->message();
  EXPECT_TRUE(workers_[1].ran().empty());
}

TEST_F(TaskSubmitterTest, AWorkerTheRayletKilledForMemoryFailsOutOfMemory) {
  rpc::ErrorInfo death;
  death.set_kind(rpc::ErrorInfo::OUT_OF_MEMORY);
  death.set_message("the memory monitor of node n1 killed its worker");
  raylet_.SetDeath(death);
  workers_[0].Die();
  ObjectResult r = Get(Submit(0));
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->kind(), rpc::ErrorInfo::OUT_OF_MEMORY);
  EXPECT_EQ(r.error->message(),
            "the memory monitor of node n1 killed its worker; 0 retries are "
            "used up");
  EXPECT_FALSE(r.error->task_name().empty());
}

}  // namespace
}  // namespace loom
