// JobManager against a fake raylet served in-process: a submission is
// started on a node and ends with the entrypoint's exit report, in either
// order with StartEntrypoint's reply.
#include "src/gcs/job_manager.h"

#include <gtest/gtest.h>

#include "src/gcs/pubsub.h"
#include "src/gcs/storage.h"
#include "tests/unit/fake_client_pool.h"
#include "tests/unit/fake_peers.h"

namespace loom::gcs {
namespace {

class JobManagerTest : public ::testing::Test {
 protected:
  JobManagerTest()
      : loop_("job-manager-test"),
        publisher_(&loop_),
        nodes_({&store_, &publisher_, Clock::Real(), absl::Seconds(5), {}}),
        jobs_({.loop = &loop_,
               .nodes = &nodes_,
               .clients = &pool_,
               .store = &store_}) {
    pool_.Serve("10.0.0.1:7001", &raylet_);
    node_.set_node_id(NodeId::FromRandom().Binary());
    node_.set_host("10.0.0.1");
    node_.set_raylet_port(7001);
    (*node_.mutable_total()->mutable_quantities())["CPU"] = 4;
    (*node_.mutable_available()->mutable_quantities())["CPU"] = 4;
    EXPECT_TRUE(nodes_.Register(node_).ok());
    loop_.Start();
  }
  ~JobManagerTest() override {
    raylet_.ReleaseGrants();
    jobs_.Shutdown();  // no reply reaches the manager after this
    loop_.Stop();
  }

  std::string Submit() {
    rpc::JobSubmission job;
    job.set_entrypoint("echo quick");
    std::string id;
    loop_.RunSync([&] {
      jobs_.Submit(job, [&](absl::StatusOr<rpc::JobSubmission> j) {
        ASSERT_TRUE(j.ok()) << j.status();
        id = j->submission_id();
      });
    });
    return id;
  }
  rpc::JobSubmission Get(const std::string& id) {
    rpc::JobSubmission job;
    loop_.RunSync([&] { job = *jobs_.Get(id); });
    return job;
  }
  void Exited(const std::string& id) {
    rpc::ReportEntrypointExitRequest report;
    report.set_submission_id(id);
    report.set_node_id(node_.node_id());
    loop_.RunSync([&] { jobs_.OnEntrypointExit(report); });
  }
  // Polls until the job is in `status`; false after 5 s.
  bool WaitFor(const std::string& id, rpc::JobSubmission::Status status) {
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      if (Get(id).status() == status) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }

  FakeRaylet raylet_;    // outlives the pool's server
  FakeClientPool pool_;  // outlives the manager
  EventLoop loop_;
  InMemoryStoreClient store_;
  Publisher publisher_;
  NodeTable nodes_;
  JobManager jobs_;
  rpc::NodeInfo node_;
};

TEST_F(JobManagerTest, AJobRunsOnANodeAndEndsWithItsExit) {
  std::string id = Submit();
  ASSERT_TRUE(WaitFor(id, rpc::JobSubmission::RUNNING));
  EXPECT_EQ(Get(id).node_id(), node_.node_id());
  Exited(id);
  rpc::JobSubmission job = Get(id);
  EXPECT_EQ(job.status(), rpc::JobSubmission::SUCCEEDED);
  EXPECT_EQ(job.node_id(), node_.node_id());
}

TEST_F(JobManagerTest, AnExitThatOvertakesTheStartReplyKeepsItsNode) {
  // A quick entrypoint's exit report can reach the head before
  // StartEntrypoint's reply: the job ends, and its output is still read
  // from the node that ran it.
  raylet_.HoldGrants();
  std::string id = Submit();
  absl::SleepFor(absl::Milliseconds(100));  // the start is asked for
  ASSERT_EQ(Get(id).status(), rpc::JobSubmission::PENDING);
  Exited(id);
  EXPECT_EQ(Get(id).status(), rpc::JobSubmission::SUCCEEDED);
  EXPECT_EQ(Get(id).node_id(), node_.node_id());
  // The late reply changes nothing.
  raylet_.ReleaseGrants();
  absl::SleepFor(absl::Milliseconds(100));
  rpc::JobSubmission job = Get(id);
  EXPECT_EQ(job.status(), rpc::JobSubmission::SUCCEEDED);
  EXPECT_EQ(job.node_id(), node_.node_id());
}

}  // namespace
}  // namespace loom::gcs
