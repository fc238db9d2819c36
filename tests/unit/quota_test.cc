// tests/unit/quota_test.cc
//
// Per-job quotas: the head's book (what each job may use on each node) and
// a raylet's gate (which requests wait), driven as heartbeats drive them.
#include <gtest/gtest.h>

#include "src/gcs/quota_book.h"
#include "src/raylet/quota_gate.h"

namespace loom {
namespace {

ResourceSet Cpus(double n) { return *ResourceSet::FromMap({{kCpu, n}}); }

rpc::JobUse UseOf(const std::string& job, double cpus, int64_t bytes = 0) {
  rpc::JobUse u;
  u.set_job_id(job);
  u.set_cpus(cpus);
  u.set_object_store_bytes(bytes);
  return u;
}

TEST(QuotaBook, EachNodeMayUseTheQuotaLessWhatOtherNodesUse) {
  gcs::QuotaBook book;
  std::string job = JobId::FromInt(2).Binary();
  rpc::JobQuota q;
  q.set_max_cpus(4);
  q.set_max_object_store_bytes(1000);
  book.Start(job, q);
  book.Start(JobId::FromInt(3).Binary(), rpc::JobQuota());  // no limits

  rpc::HeartbeatRequest a;
  a.set_node_id("node-a");
  *a.add_job_use() = UseOf(job, 3, 400);
  rpc::HeartbeatReply ra;
  book.OnHeartbeat(a, &ra);
  ASSERT_EQ(ra.allowances_size(), 1);      // only the job with limits
  EXPECT_EQ(ra.allowances(0).cpus(), 4);   // nothing used elsewhere
  EXPECT_EQ(ra.allowances(0).gpus(), -1);  // no GPU limit

  rpc::HeartbeatRequest b;
  b.set_node_id("node-b");
  rpc::HeartbeatReply rb;
  book.OnHeartbeat(b, &rb);
  EXPECT_EQ(rb.allowances(0).cpus(), 1);
  EXPECT_EQ(rb.allowances(0).object_store_bytes(), 600);
  EXPECT_EQ(book.Use(job)->cpus(), 3);

  book.OnNodeDead("node-a");
  rpc::HeartbeatReply again;
  book.OnHeartbeat(b, &again);
  EXPECT_EQ(again.allowances(0).cpus(), 4);
  book.End(job);
  rpc::HeartbeatReply ended;
  book.OnHeartbeat(b, &ended);
  EXPECT_EQ(ended.allowances_size(), 0);
}

TEST(QuotaBook, RefusesNegativeLimits) {
  rpc::JobQuota q;
  q.set_max_actors(-1);
  EXPECT_EQ(gcs::ValidateQuota(q).code(), absl::StatusCode::kInvalidArgument);
  q.set_max_actors(2);
  q.set_max_cpus(std::nan(""));
  EXPECT_EQ(gcs::ValidateQuota(q).code(), absl::StatusCode::kInvalidArgument);
}

TEST(QuotaGate, AJobIsUnknownUntilAHeartbeatSentAfterItAnswers) {
  raylet::QuotaGate gate;
  JobId job = JobId::FromInt(7);
  EXPECT_EQ(gate.Check(job, Cpus(1)), raylet::QuotaGate::kUnknown);
  EXPECT_TRUE(gate.AnyUnknown());
  // A reply to a heartbeat sent before the request settles nothing.
  rpc::HeartbeatReply early;
  early.set_next_job(5);
  gate.OnHeartbeatReply(early);
  EXPECT_FALSE(gate.Known(job));
  rpc::HeartbeatRequest req;
  gate.FillUse({}, &req);
  rpc::HeartbeatReply reply;  // the head still numbers below it: no quota
  reply.set_next_job(5);
  EXPECT_TRUE(gate.OnHeartbeatReply(reply));
  EXPECT_EQ(gate.Check(job, Cpus(100)), raylet::QuotaGate::kAdmit);
}

TEST(QuotaGate, HoldsPastTheAllowanceAndCountsLentCpuOut) {
  raylet::QuotaGate gate;
  JobId job = JobId::FromInt(3);
  rpc::HeartbeatReply reply;
  reply.set_next_job(4);
  rpc::JobUse* a = reply.add_allowances();
  a->set_job_id(job.Binary());
  a->set_cpus(2);
  a->set_gpus(-1);
  a->set_object_store_bytes(-1);
  gate.OnHeartbeatReply(reply);
  ASSERT_EQ(gate.Check(job, Cpus(1)), raylet::QuotaGate::kAdmit);
  gate.Take(job, Cpus(1));
  ASSERT_EQ(gate.Check(job, Cpus(1)), raylet::QuotaGate::kAdmit);
  gate.Take(job, Cpus(1));
  EXPECT_EQ(gate.Check(job, Cpus(0.5)), raylet::QuotaGate::kHold);
  EXPECT_EQ(gate.Check(JobId::FromInt(2), Cpus(8)),
            raylet::QuotaGate::kAdmit);  // another job
  rpc::HeartbeatRequest req;
  gate.FillUse({{job, 123}}, &req);
  ASSERT_EQ(req.job_use_size(), 1);
  EXPECT_EQ(req.job_use(0).cpus(), 2);
  EXPECT_EQ(req.job_use(0).object_store_bytes(), 123);
  EXPECT_EQ(req.job_use(0).waiting(), 1);
  gate.Give(job, Cpus(1));  // a blocked worker lends its CPU back
  EXPECT_EQ(gate.Check(job, Cpus(1)), raylet::QuotaGate::kAdmit);
  EXPECT_TRUE(gate.StoreLimits().empty());
}

}  // namespace
}  // namespace loom
