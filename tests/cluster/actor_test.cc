// Cluster tests: actors (creation, ordered calls, names, kill, restarts).
#include <signal.h>

#include <algorithm>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loom/loom.h"
#include "src/common/ids.h"
#include "tests/cluster/cluster_util.h"
#include "tests/cluster/private_cluster.h"
#include "tests/cluster/test_functions.h"

namespace loom::test {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

TEST_F(PrivateClusterTest, AnActorKeepsStateAndRunsPipelinedCallsInOrder) {
  StartCluster(2);
  auto counter = Actor(MakeCounter).Remote(10);
  EXPECT_EQ(*Get(counter.Task(&Counter::Add).Remote(5), 30000), 15);
  std::vector<ObjectRef<int>> refs;
  for (int i = 0; i < 10000; ++i) {
    refs.push_back(counter.Task(&Counter::Append).Remote(i));
  }
  auto counts = Get(refs, 60000);
  EXPECT_EQ(*counts.back(), 10000);
  EXPECT_TRUE(*Get(counter.Task(&Counter::InOrder).Remote(), 30000));
  EXPECT_EQ(*Get(counter.Task(&Counter::Get).Remote(), 30000), 15);
}

TEST_F(PrivateClusterTest, NamedActorsAreFoundAndNamesAreUnique) {
  StartCluster(2);
  auto counter = Actor(MakeCounter).SetName("hits").Remote(1);
  auto found = GetActor<Counter>("hits");
  EXPECT_EQ(found.Binary(), counter.Binary());
  EXPECT_EQ(*Get(found.Task(&Counter::Add).Remote(2), 30000), 3);
  EXPECT_THAT([] { Actor(MakeCounter).SetName("hits").Remote(5); },
              ThrowsMessage<Error>(HasSubstr("'hits' is taken")));
  auto same = Actor(MakeCounter).SetName("hits").SetGetIfExists().Remote(5);
  EXPECT_EQ(same.Binary(), counter.Binary());
  EXPECT_THAT([] { GetActor<Counter>("hits", "elsewhere"); },
              ThrowsMessage<Error>(
                  HasSubstr("no actor named 'hits' in namespace 'elsewhere'")));
  EXPECT_THAT([] { GetActor<Counter>("nobody"); },
              ThrowsMessage<Error>(HasSubstr("no actor named 'nobody'")));
}

TEST_F(PrivateClusterTest, AKilledActorRestartsWithFreshStateThenDies) {
  StartCluster(2);
  auto counter =
      Actor(MakeCounter).SetMaxRestarts(1).SetMaxTaskRetries(1).Remote(10);
  EXPECT_EQ(*Get(counter.Task(&Counter::Add).Remote(5), 30000), 15);
  int pid = *Get(counter.Task(&Counter::Pid).Remote(), 30000);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  // The factory runs again: the state starts over.
  EXPECT_EQ(*Get(counter.Task(&Counter::Add).Remote(1), 30000), 11);
  int restarted = *Get(counter.Task(&Counter::Pid).Remote(), 30000);
  EXPECT_NE(restarted, pid);
  ASSERT_EQ(kill(restarted, SIGKILL), 0);
  // Restarts used up: calls fail with the cause.
  EXPECT_THROW(Get(counter.Task(&Counter::Add).Remote(1), 30000),
               ActorDiedError);
  EXPECT_THROW(Get(counter.Task(&Counter::Get).Remote(), 30000),
               ActorDiedError);
}

TEST_F(PrivateClusterTest, KillStopsAnActorForGood) {
  StartCluster(2);
  auto counter =
      Actor(MakeCounter).SetName("doomed").SetMaxRestarts(3).Remote(0);
  int pid = *Get(counter.Task(&Counter::Pid).Remote(), 30000);
  Kill(counter);
  EXPECT_THROW(Get(counter.Task(&Counter::Get).Remote(), 30000),
               ActorDiedError);
  EXPECT_TRUE(WaitUntil([&] { return kill(pid, 0) != 0; }, absl::Seconds(5)));
  EXPECT_THAT([] { GetActor<Counter>("doomed"); },  // the name is free
              ThrowsMessage<Error>(HasSubstr("no actor named 'doomed'")));
  auto again = Actor(MakeCounter).SetName("doomed").Remote(7);
  EXPECT_EQ(*Get(again.Task(&Counter::Get).Remote(), 30000), 7);
}

TEST_F(PrivateClusterTest, AHandlePassedToATaskReachesTheActor) {
  StartCluster(2);
  auto counter = Actor(MakeCounter).Remote(100);
  EXPECT_EQ(*Get(Task(AddThroughHandle).Remote(counter, 1), 30000), 101);
  EXPECT_EQ(*Get(counter.Task(&Counter::Get).Remote(), 30000), 101);
  // And to another actor, which calls it.
  auto caller = Actor(MakeCounter).Remote(0);
  EXPECT_EQ(*Get(caller.Task(&Counter::AddTo).Remote(counter, 2), 30000), 103);
}

TEST_F(PrivateClusterTest, ManyActorsFitOnATwoCpuNode) {
  StartCluster(2);
  std::vector<ActorHandle<Counter>> actors;
  for (int i = 0; i < 100; ++i) actors.push_back(Actor(MakeCounter).Remote(i));
  std::vector<ObjectRef<int>> values;
  for (auto& a : actors) values.push_back(a.Task(&Counter::Get).Remote());
  auto got = Get(values, 120000);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(*got[i], i);
}

TEST_F(PrivateClusterTest, MaxConcurrencyRunsCallsAtOnce) {
  StartCluster(2);
  auto counter = Actor(MakeCounter).SetMaxConcurrency(8).Remote(0);
  EXPECT_EQ(*Get(counter.Task(&Counter::Get).Remote(), 30000), 0);
  absl::Time start = absl::Now();
  std::vector<ObjectRef<int>> sleeps;
  for (int i = 0; i < 8; ++i) {
    sleeps.push_back(counter.Task(&Counter::Sleep).Remote(500));
  }
  Get(sleeps, 30000);
  // One at a time would take 4 s.
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1500));
}

TEST_F(PrivateClusterTest, MaxPendingCallsPushesBackAtOnce) {
  StartCluster(2);
  auto counter = Actor(MakeCounter).SetMaxPendingCalls(2).Remote(0);
  auto a = counter.Task(&Counter::Sleep).Remote(500);
  auto b = counter.Task(&Counter::Sleep).Remote(500);
  absl::Time start = absl::Now();
  EXPECT_THROW(counter.Task(&Counter::Get).Remote(),
               PendingCallsLimitExceededError);
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(100));
  Get(a, 30000);
  Get(b, 30000);
  EXPECT_EQ(*Get(counter.Task(&Counter::Get).Remote(), 30000), 0);
}

// Drops `handle` (not its actor's last) together with the only handle of a
// control actor, and returns whether `handle`'s actor process lives on
// while the control's stops, and for as long again: the time in which it
// would have stopped too, were the drop its last.
bool StaysAliveWhileAControlStops(ActorHandle<Counter>& handle) {
  int pid = *Get(handle.Task(&Counter::Pid).Remote(), 30000);
  auto control = Actor(MakeCounter).Remote(0);
  int control_pid = *Get(control.Task(&Counter::Pid).Remote(), 30000);
  absl::Time dropped = absl::Now();
  handle = ActorHandle<Counter>();
  control = ActorHandle<Counter>();
  auto alive = [&] { return kill(pid, 0) == 0; };
  bool control_stopped = WaitUntil(
      [&] { return !alive() || kill(control_pid, 0) != 0; }, absl::Seconds(5));
  EXPECT_TRUE(control_stopped) << "control actor " << control_pid;
  absl::Duration took =
      std::max(absl::Now() - dropped, absl::Milliseconds(100));
  return alive() && StaysTrue(alive, took);
}

TEST_F(PrivateClusterTest, DroppingEveryHandleStopsTheActor) {
  StartCluster(2);
  int pid = 0;
  {
    auto counter = Actor(MakeCounter).Remote(1);
    pid = *Get(counter.Task(&Counter::Pid).Remote(), 30000);
    // A copy inside a task keeps it alive while the task runs.
    EXPECT_EQ(*Get(Task(AddThroughHandle).Remote(counter, 1), 30000), 2);
  }
  EXPECT_TRUE(WaitUntil([&] { return kill(pid, 0) != 0; }, absl::Seconds(5)))
      << "actor process " << pid << " still runs";
  // A named actor too: a handle found by name counts like the others.
  auto named = Actor(MakeCounter).SetName("kept").Remote(3);
  int named_pid = *Get(named.Task(&Counter::Pid).Remote(), 30000);
  auto found = GetActor<Counter>("kept");
  EXPECT_TRUE(StaysAliveWhileAControlStops(named))
      << "actor process " << named_pid << " stopped with a handle left";
  EXPECT_EQ(*Get(found.Task(&Counter::Get).Remote(), 30000), 3);
  found = ActorHandle<Counter>();
  EXPECT_TRUE(
      WaitUntil([&] { return kill(named_pid, 0) != 0; }, absl::Seconds(5)));
  // Detached: no handle holds it; it lives until killed.
  auto detached = Actor(MakeCounter).SetDetached().Remote(4);
  int detached_pid = *Get(detached.Task(&Counter::Pid).Remote(), 30000);
  EXPECT_TRUE(StaysAliveWhileAControlStops(detached))
      << "detached actor process " << detached_pid << " stopped";
}

// After Shutdown and Init in one process, the new driver's ids start from a
// root of their own (a new head may hand out the job number the last driver
// had), so a handle kept from the first cluster and dropped in the second
// leaves the second's actor alone.
TEST_F(PrivateClusterTest, ReinitInOneProcessNeverRepeatsAnId) {
  StartCluster(2);
  auto old_counter = Actor(MakeCounter).Remote(1);
  ASSERT_EQ(*Get(old_counter.Task(&Counter::Get).Remote(), 30000), 1);
  auto old_put = Put(std::string("x"));
  loom::Shutdown();
  StartCluster(2);
  auto counter = Actor(MakeCounter).Remote(2);
  ASSERT_EQ(*Get(counter.Task(&Counter::Get).Remote(), 30000), 2);
  auto put = Put(std::string("x"));
  ObjectId id = *ObjectId::FromBinary(put.Binary());
  EXPECT_NE(id.Task(), TaskId::ForDriver(id.Task().Job()));
  EXPECT_NE(put.Binary(), old_put.Binary());
  old_counter = ActorHandle<Counter>();
  old_put = ObjectRef<std::string>();
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(*Get(counter.Task(&Counter::Get).Remote(), 30000), 2);
  }
}

// Code that cannot load fails the actor (and a task) at once, saying why,
// instead of leaving its callers waiting while the head retries.
TEST_F(PrivateClusterTest, AnActorWhoseCodeCannotLoadDiesSayingWhy) {
  InitOptions options;
  options.session_root = root_.path();
  options.num_cpus = 2;
  options.code_search_path = {TestLib(), root_.path() + "/missing.so"};
  loom::Init(options);
  auto counter = Actor(MakeCounter).Remote(1);
  try {
    Get(counter.Task(&Counter::Get).Remote(), 20000);
    FAIL() << "the call should fail";
  } catch (const ActorDiedError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.so"), std::string::npos)
        << e.what();
  }
  try {
    Get(Task(Add).Remote(1, 2), 20000);
    FAIL() << "the task should fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.so"), std::string::npos)
        << e.what();
  }
}

TEST_F(PrivateClusterTest, LoomListShowsActorsAndNodes) {
  StartCluster(2);
  auto counter = Actor(MakeCounter).SetName("listed").Remote(1);
  int pid = *Get(counter.Task(&Counter::Pid).Remote(), 30000);
  auto doomed = Actor(MakeCounter).Remote(2);
  Kill(doomed);
  auto actors =
      RunCommand(BinDir() + "/loom list actors --session-root " + root_.path());
  ASSERT_EQ(actors.exit_code, 0) << actors.output;
  EXPECT_NE(actors.output.find("Counter"), std::string::npos) << actors.output;
  EXPECT_NE(actors.output.find("listed"), std::string::npos);
  EXPECT_NE(actors.output.find("ALIVE"), std::string::npos);
  EXPECT_NE(actors.output.find(std::to_string(pid)), std::string::npos);
  EXPECT_NE(actors.output.find("DEAD"), std::string::npos);
  EXPECT_NE(actors.output.find("killed by loom::Kill"), std::string::npos);
  auto nodes =
      RunCommand(BinDir() + "/loom list nodes --session-root " + root_.path());
  ASSERT_EQ(nodes.exit_code, 0) << nodes.output;
  EXPECT_NE(nodes.output.find("ALIVE"), std::string::npos) << nodes.output;
  EXPECT_NE(nodes.output.find("CPU"), std::string::npos);
  auto bad = RunCommand(BinDir() + "/loom list things 2>&1");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("things not in {tasks,actors"), std::string::npos)
      << bad.output;
}

TEST(ActorGpus, EachActorSeesOnlyTheGpusItHolds) {
  TempRoot root;
  InitOptions options;
  options.session_root = root.path();
  options.num_cpus = 2;
  options.num_gpus = 2;
  options.code_search_path = {TestLib()};
  loom::Init(options);
  auto a = Actor(MakeCounter).SetResource("GPU", 1).Remote(0);
  auto b = Actor(MakeCounter)
               .SetResource("GPU", 1)
               .SetLifetime(ActorLifetime::kDetached)
               .Remote(0);
  std::string ga = *Get(a.Task(&Counter::Gpus).Remote(), 30000);
  std::string gb = *Get(b.Task(&Counter::Gpus).Remote(), 30000);
  EXPECT_TRUE(ga == "0|0" || ga == "1|1") << ga;
  EXPECT_TRUE(gb == "0|0" || gb == "1|1") << gb;
  EXPECT_NE(ga, gb);
  Kill(b);
  loom::Shutdown();
}

}  // namespace
}  // namespace loom::test
