// A standby head on the head's Redis: it waits while the active head holds
// the leader lease, takes over when that head is killed, and the nodes and
// the driver that name both heads go on with it: named actors found,
// actors created, tasks run on every node, job ids continue.
#include <future>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loom/loom.h"
#include "proto/gcs.grpc.pb.h"
#include "src/common/ids.h"
#include "src/common/process.h"
#include "src/common/rpc.h"
#include "src/common/session.h"
#include "tests/cluster/cluster_util.h"
#include "tests/cluster/test_cluster.h"
#include "tests/cluster/test_functions.h"
#include "tests/common/redis_server.h"

namespace loom::test {
namespace {

bool FileExists(const std::string& path) { return ReadFileToString(path).ok(); }

class StandbyHead : public ::testing::Test {
 protected:
  void SetUp() override {
    auto redis = RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = std::move(*redis);
    int active_port = FreePortBelowEphemeralRange();
    int standby_port = FreePortBelowEphemeralRange();
    ASSERT_NE(active_port, standby_port);
    standby_address_ = absl::StrCat("127.0.0.1:", standby_port);
    cluster_ = std::make_unique<Cluster>(
        NodeOptions{.num_cpus = 2,
                    .gcs_port = active_port,
                    .storage = redis_->url(),
                    .standby_addresses = standby_address_});
    ASSERT_TRUE(cluster_->status().ok()) << cluster_->status();
    // The standby: no token of its own (it takes the cluster's from
    // storage), no session it shares with the active head.
    auto pid = Spawn({.argv = {BinDir() + "/loom-gcs", "--standby", "--port",
                               absl::StrCat(standby_port), "--session-dir",
                               standby_dir_.path(), "--storage", redis_->url(),
                               "--leader-lease-ms", "1000"},
                      .stderr_path = standby_dir_.path() + "/gcs.err"});
    ASSERT_TRUE(pid.ok()) << pid.status();
    standby_ = *pid;
    ASSERT_TRUE(WaitUntil(
        [&] { return FileExists(standby_dir_.path() + "/gcs.standby"); },
        absl::Seconds(10)));
  }
  void TearDown() override {
    loom::Shutdown();
    if (standby_ > 0) TerminateProcess(standby_, absl::Seconds(2));
    cluster_.reset();
  }
  bool StandbyServes() {
    return FileExists(standby_dir_.path() + "/gcs.ready");
  }

  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<Cluster> cluster_;
  std::string standby_address_;
  TempRoot standby_dir_;
  pid_t standby_ = -1;
};

TEST_F(StandbyHead, TakesOverWhenTheActiveHeadIsKilled) {
  Cluster::Node* other = cluster_->AddNode({.resources = {{"other", 1}}});
  ASSERT_NE(other, nullptr);
  EXPECT_THAT(cluster_->address(), ::testing::EndsWith(standby_address_));
  cluster_->Connect();
  auto keeper =
      loom::Actor(MakeCounter).SetName("keeper").SetDetached().Remote(10);
  ASSERT_EQ(*Get(keeper.Task(&Counter::Add).Remote(1), 30000), 11);
  ASSERT_EQ(*Get(Task(Add).SetResource("other", 1).Remote(1, 2), 30000), 3);
  auto before = NewJob(cluster_->address());
  ASSERT_TRUE(before.ok()) << before.status();
  // The active head renews its lease: the standby stays out.
  EXPECT_TRUE(StaysTrue([&] { return !StandbyServes(); }, absl::Seconds(3)));

  absl::Time killed = absl::Now();
  KillHead(cluster_->head().handle());
  ASSERT_TRUE(WaitUntil([&] { return StandbyServes(); }, absl::Seconds(20)));
  absl::Duration took_over = absl::Now() - killed;
  auto found = loom::GetActor<Counter>("keeper");
  EXPECT_EQ(*Get(found.Task(&Counter::Add).Remote(1), 30000), 12);
  auto fresh = loom::Actor(MakeCounter).Remote(100);
  EXPECT_EQ(*Get(fresh.Task(&Counter::Add).Remote(1), 30000), 101);
  EXPECT_EQ(*Get(Task(Add).SetResource("other", 1).Remote(2, 3), 30000), 5);
  EXPECT_EQ(*Get(Task(Add).Remote(3, 4), 30000), 7);
  auto after = NewJob(cluster_->address());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_GT(*after, *before);
  EXPECT_TRUE(cluster_->WaitForNodes(absl::Seconds(20)));
  std::printf("the standby served %s after the kill; all done %s after\n",
              absl::FormatDuration(took_over).c_str(),
              absl::FormatDuration(absl::Now() - killed).c_str());
  loom::Kill(keeper);
}

}  // namespace
}  // namespace loom::test
