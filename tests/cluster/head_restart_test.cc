// A head killed with kill -9 and started again on its port: on Redis it
// finds its actors, jobs and functions again; calls that need it while it
// is down wait for it; and job ids never repeat, on Redis or not.
#include <signal.h>

#include <future>

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loom/loom.h"
#include "proto/gcs.grpc.pb.h"
#include "src/common/auth.h"
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

// Without Redis, a head started again on the same session directory goes
// on from its job counter: a new driver's ids cannot equal an old one's.
TEST(HeadRestart, JobIdsNeverRepeatWithoutRedis) {
  Cluster cluster({.gcs_port = FreePortBelowEphemeralRange()});
  ASSERT_TRUE(cluster.status().ok()) << cluster.status();
  const ClusterHandle& h = cluster.head().handle();
  uint32_t last = 0;
  for (int i = 0; i < 5; ++i) {
    auto job = NewJob(h.gcs_address);
    ASSERT_TRUE(job.ok()) << job.status();
    last = *job;
  }
  auto gcs = RestartHead(h);
  ASSERT_TRUE(gcs.ok()) << gcs.status();
  auto next = NewJob(h.gcs_address);  // waits for the new head
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_GT(*next, last);
  TerminateProcess(*gcs, absl::Seconds(2));
}

class HeadOnRedis : public ::testing::Test {
 protected:
  void SetUp() override {
    auto redis = RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = std::move(*redis);
    cluster_ = std::make_unique<Cluster>(
        NodeOptions{.num_cpus = 2,
                    .gcs_port = FreePortBelowEphemeralRange(),
                    .storage = redis_->url()});
    ASSERT_TRUE(cluster_->status().ok()) << cluster_->status();
  }
  void TearDown() override {
    loom::Shutdown();
    if (gcs_ > 0) TerminateProcess(gcs_, absl::Seconds(2));
    cluster_.reset();
  }
  const ClusterHandle& head() { return cluster_->head().handle(); }
  // The head started again on its port and session, on the same Redis.
  void StartHeadAgain() {
    auto pid = test::StartHeadAgain(
        head(), {"--storage", redis_->url(), "--host", "127.0.0.1",
                 "--node-timeout-ms", "5000"});
    ASSERT_TRUE(pid.ok()) << pid.status();
    gcs_ = *pid;
  }

  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<Cluster> cluster_;
  pid_t gcs_ = -1;
};

// What a restarted head must know again: a named detached actor (found by
// name, its state kept: calls go on to the same process), the function
// table (a task runs), job ids (they go on), a placement group (its bundle
// kept). A new actor can be created.
TEST_F(HeadOnRedis, ActorsJobsAndFunctionsSurviveAHeadRestart) {
  cluster_->Connect();
  auto keeper =
      loom::Actor(MakeCounter).SetName("keeper").SetDetached().Remote(10);
  ASSERT_EQ(*Get(keeper.Task(&Counter::Add).Remote(1), 30000), 11);
  int pid = *Get(keeper.Task(&Counter::Pid).Remote(), 30000);
  ASSERT_EQ(*Get(Task(Add).Remote(1, 2), 30000), 3);
  auto group = loom::CreatePlacementGroup({{{"CPU", 1}}});
  ASSERT_TRUE(group.Wait(30000));
  auto before = NewJob(head().gcs_address);
  ASSERT_TRUE(before.ok()) << before.status();

  KillHead(head());
  // Direct calls to an actor need no head.
  EXPECT_EQ(*Get(keeper.Task(&Counter::Add).Remote(1), 30000), 12);
  absl::Time restart = absl::Now();
  StartHeadAgain();
  auto found = loom::GetActor<Counter>("keeper");
  EXPECT_EQ(*Get(found.Task(&Counter::Add).Remote(1), 30000), 13);
  EXPECT_EQ(*Get(found.Task(&Counter::Pid).Remote(), 30000), pid);
  auto fresh = loom::Actor(MakeCounter).Remote(100);
  EXPECT_EQ(*Get(fresh.Task(&Counter::Add).Remote(1), 30000), 101);
  // The placement group kept its bundle: a task runs inside it.
  EXPECT_TRUE(group.Wait(30000));
  EXPECT_EQ(*Get(Task(Add).SetPlacementGroup(group, 0).Remote(3, 4), 30000), 7);
  EXPECT_EQ(*Get(Task(Add).Remote(2, 3), 30000), 5);
  auto after = NewJob(head().gcs_address);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_GT(*after, *before);
  std::printf("recovered in %s\n",
              absl::FormatDuration(absl::Now() - restart).c_str());
  loom::Kill(keeper);
}

// While the head is down, what needs it (creating an actor or a placement
// group, finding an actor by name) waits and completes once it is back,
// instead of failing.
TEST_F(HeadOnRedis, CallsThatNeedTheHeadWaitWhileItIsDown) {
  cluster_->Connect();
  auto named = loom::Actor(MakeCounter).SetName("named").Remote(1);
  ASSERT_EQ(*Get(named.Task(&Counter::Add).Remote(1), 30000), 2);
  KillHead(head());
  auto created = std::async(std::launch::async, [] {
    auto a = loom::Actor(MakeCounter).Remote(7);
    return *Get(a.Task(&Counter::Add).Remote(1), 60000);
  });
  auto looked_up = std::async(std::launch::async, [] {
    auto a = loom::GetActor<Counter>("named");
    return *Get(a.Task(&Counter::Get).Remote(), 60000);
  });
  auto grouped = std::async(std::launch::async, [] {
    auto group = loom::CreatePlacementGroup({{{"CPU", 1}}});
    return group.Wait(60000);
  });
  EXPECT_EQ(created.wait_for(std::chrono::seconds(2)),
            std::future_status::timeout);  // waiting, not failed
  StartHeadAgain();
  EXPECT_EQ(created.get(), 8);
  EXPECT_EQ(looked_up.get(), 2);
  EXPECT_TRUE(grouped.get());
}

// The cluster's token goes through storage: a head started again without
// its session directory (as on another machine) takes it from Redis, and
// the nodes and drivers holding it go on.
TEST_F(HeadOnRedis, AHeadWithoutItsSessionTakesTheTokenFromStorage) {
  ASSERT_EQ(std::getenv("LOOM_AUTH_TOKEN"), nullptr);
  cluster_->Connect();
  ASSERT_EQ(*Get(Task(Add).Remote(1, 2), 30000), 3);
  KillHead(head());
  TempRoot elsewhere;
  std::string port =
      head().gcs_address.substr(head().gcs_address.rfind(':') + 1);
  auto pid =
      Spawn({.argv = {BinDir() + "/loom-gcs", "--port", port, "--session-dir",
                      elsewhere.path(), "--storage", redis_->url()}});
  ASSERT_TRUE(pid.ok()) << pid.status();
  gcs_ = *pid;
  auto found = loom::Actor(MakeCounter).Remote(1);
  EXPECT_EQ(*Get(found.Task(&Counter::Add).Remote(1), 30000), 2);
  EXPECT_EQ(*Get(Task(Add).Remote(2, 3), 30000), 5);
  std::string kept =
      ReadFileToString(elsewhere.path() + "/auth_token").value_or("");
  EXPECT_EQ(absl::StripTrailingAsciiWhitespace(kept), head().auth_token);
}

// A head given another token than the cluster's refuses to start, saying
// why, instead of running a head its nodes cannot talk to.
TEST_F(HeadOnRedis, AHeadWithAnotherTokenRefusesToStart) {
  KillHead(head());
  TempRoot elsewhere;
  std::string other = elsewhere.path() + "/other_token";
  ASSERT_TRUE(WriteTokenFile(other, std::string(64, 'a')).ok());
  std::string port =
      head().gcs_address.substr(head().gcs_address.rfind(':') + 1);
  std::string err = elsewhere.path() + "/gcs.err";
  auto pid = Spawn({.argv = {BinDir() + "/loom-gcs", "--port", port,
                             "--session-dir", elsewhere.path(), "--storage",
                             redis_->url(), "--auth-token-file", other},
                    .stderr_path = err});
  ASSERT_TRUE(pid.ok()) << pid.status();
  EXPECT_TRUE(WaitForExit(*pid, absl::Seconds(10)));
  EXPECT_THAT(ReadFileToString(err).value_or(""),
              ::testing::HasSubstr("differs from the one its storage holds"));
}

// A driver that dies while the head is down: its raylet keeps telling the
// head until it is back, so the job ends DRIVER_DIED, not RUNNING for ever.
TEST_F(HeadOnRedis, ADriverThatDiesWhileTheHeadIsDownIsRecordedDead) {
  TempRoot files;
  std::string out = files.path() + "/driver.out";
  auto driver = Spawn({.argv = {BinDir() + "/loom-test-driver", "actors",
                                head().gcs_address, cluster_->head().root()},
                       .stdout_path = out});
  ASSERT_TRUE(driver.ok()) << driver.status();
  ASSERT_TRUE(WaitUntil(
      [&] {
        return ReadFileToString(out).value_or("").find("ready") !=
               std::string::npos;
      },
      absl::Seconds(30)));
  KillHead(head());
  ASSERT_EQ(kill(*driver, SIGKILL), 0);
  ASSERT_TRUE(WaitForExit(*driver, absl::Seconds(5)));
  absl::SleepFor(absl::Seconds(1));  // the raylet's first reports fail
  StartHeadAgain();
  auto stub = rpc::Gcs::NewStub(rpc::MakeChannel(head().gcs_address));
  rpc::JobInfo::State state = rpc::JobInfo::RUNNING;
  EXPECT_TRUE(WaitUntil(
      [&] {
        rpc::Context ctx;
        rpc::GetJobsReply jobs;
        stub->GetJobs(&ctx, rpc::GetJobsRequest(), &jobs);
        for (const auto& job : jobs.jobs()) {
          if (job.driver_pid() == *driver) state = job.state();
        }
        return state == rpc::JobInfo::DRIVER_DIED;
      },
      absl::Seconds(20)))
      << "the job is " << rpc::JobInfo::State_Name(state);
}

// A head that dies after a raylet granted it an actor's lease and before
// it saved it: the next head places the actor again, and the raylet,
// registering with it, releases the lease nobody knows (its worker stops).
// The actor alive from before keeps its own lease.
TEST_F(HeadOnRedis, ALeaseAHeadDiedBeforeSavingIsReleased) {
  cluster_->Connect();
  auto old = loom::Actor(MakeCounter).SetName("old").SetDetached().Remote(1);
  ASSERT_EQ(*Get(old.Task(&Counter::Add).Remote(1), 30000), 2);
  const std::string& session = cluster_->head().session_dir();
  const std::string leased = "loom_workers{state=\"leased\"}";
  double before = RayletMetric(session, leased);
  KillHead(head());
  std::string port =
      head().gcs_address.substr(head().gcs_address.rfind(':') + 1);
  auto dying = Spawn(
      {.argv = {BinDir() + "/loom-gcs", "--port", port, "--session-dir",
                session, "--storage", redis_->url(), "--host", "127.0.0.1"},
       .extra_env = {"LOOM_TESTING_HEAD_EXIT_AT=actor-lease"}});
  ASSERT_TRUE(dying.ok()) << dying.status();
  auto created = std::async(std::launch::async, [] {
    auto a = loom::Actor(MakeCounter).Remote(7);
    return *Get(a.Task(&Counter::Add).Remote(1), 60000);
  });
  ASSERT_TRUE(WaitForExit(*dying, absl::Seconds(30)));
  std::printf("leased before %g, after the dying head %g\n", before,
              RayletMetric(session, leased));
  EXPECT_TRUE(WaitUntil(  // the orphan
      [&] { return RayletMetric(session, leased) == before + 1; },
      absl::Seconds(5)));
  StartHeadAgain();
  EXPECT_EQ(created.get(), 8);
  // The old actor's and the new one's: the orphan is gone.
  EXPECT_TRUE(
      WaitUntil([&] { return RayletMetric(session, leased) == before + 1; },
                absl::Seconds(20)))
      << RayletMetric(session, leased) << " leased, " << before << " before";
  EXPECT_EQ(*Get(old.Task(&Counter::Add).Remote(1), 30000), 3);
  loom::Kill(old);
}

}  // namespace
}  // namespace loom::test
