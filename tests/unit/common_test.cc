// Unit tests for src/common: IDs, the event loop, sessions, processes.
#include <signal.h>
#include <unistd.h>

#include <atomic>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "src/common/event_loop.h"
#include "src/common/ids.h"
#include "src/common/process.h"
#include "src/common/session.h"

namespace loom {
namespace {

TEST(Ids, ChildTaskIdsAreDeterministicAndDistinct) {
  JobId job = JobId::FromInt(7);
  TaskId root = TaskId::ForDriver(job);
  EXPECT_EQ(root.Job(), job);
  TaskId a = TaskId::ForChild(root, 1);
  EXPECT_EQ(a, TaskId::ForChild(root, 1));
  EXPECT_NE(a, TaskId::ForChild(root, 2));
  EXPECT_EQ(a.Job().ToInt(), 7u);
  EXPECT_NE(TaskId::ForChild(a, 1), TaskId::ForChild(root, 1));
}

TEST(Ids, ObjectIdsCarryTaskAndIndex) {
  TaskId t = TaskId::ForChild(TaskId::ForDriver(JobId::FromInt(1)), 3);
  ObjectId ret = ObjectId::ForReturn(t, 1);
  ObjectId put = ObjectId::ForPut(t, 1);
  EXPECT_EQ(ret.Task(), t);
  EXPECT_EQ(ret.Index(), 1u);
  EXPECT_FALSE(ret.IsPut());
  EXPECT_TRUE(put.IsPut());
  EXPECT_EQ(put.Index(), 1u);
  EXPECT_NE(ret, put);
}

TEST(Ids, FromBinaryRefusesWrongSizes) {
  EXPECT_EQ(ObjectId::FromBinary("").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ObjectId::FromBinary(std::string(21, 'x')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeId::FromBinary(std::string(15, 'x')).status().code(),
            absl::StatusCode::kInvalidArgument);
  NodeId n = NodeId::FromRandom();
  auto parsed = NodeId::FromBinary(n.Binary());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, n);
  EXPECT_EQ(n.Hex().size(), 32u);
}

TEST(EventLoop, RunsPostedWorkInOrder) {
  EventLoop loop("test");
  loop.Start();
  std::vector<int> seen;
  for (int i = 0; i < 100; ++i) loop.Post([&seen, i] { seen.push_back(i); });
  loop.RunSync([] {});
  ASSERT_EQ(seen.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seen[i], i);
}

TEST(EventLoop, PostAfterFollowsTheInjectedClock) {
  ManualClock clock;
  EventLoop loop("test", &clock);
  loop.Start();
  std::atomic<bool> fired{false};
  loop.PostAfter(absl::Seconds(10), [&] { fired = true; });
  // Each pass of the loop runs what is posted, then the timers due; two
  // round trips make sure a pass has looked at the timer and finished.
  auto two_passes = [&] {
    loop.RunSync([] {});
    loop.RunSync([] {});
  };
  two_passes();
  EXPECT_FALSE(fired);
  clock.Advance(absl::Seconds(9));
  two_passes();
  EXPECT_FALSE(fired) << "fired a second early";
  clock.Advance(absl::Seconds(1));
  two_passes();
  EXPECT_TRUE(fired);
}

TEST(EventLoop, RunSyncAfterStopRunsInline) {
  EventLoop loop("test");
  loop.Start();
  loop.Stop();
  bool ran = false;
  loop.RunSync([&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST(Session, CreatesDirectoryAndLatestLink) {
  char tmpl[] = "/tmp/lu_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string root = tmpl;
  auto dir = CreateSessionDir(root);
  ASSERT_TRUE(dir.ok()) << dir.status();
  ASSERT_TRUE(WriteFileAtomic(*dir + "/address", "127.0.0.1:1").ok());
  auto addr = ReadFileToString(LatestSessionDir(root) + "/address");
  ASSERT_TRUE(addr.ok());
  EXPECT_EQ(*addr, "127.0.0.1:1");
  EXPECT_FALSE(CreateSessionDir(std::string(100, 'a')).ok());
  std::system(("rm -rf " + root).c_str());
}

TEST(Process, ChildExitsWhenLifelineCloses) {
  auto lifeline = MakeLifeline();
  ASSERT_TRUE(lifeline.ok());
  // `cat` reads fd 0; give it the lifeline as stdin via sh.
  SpawnOptions opts;
  opts.argv = {"/bin/sh", "-c", "exec cat <&3 >/dev/null"};
  opts.lifeline_fd = lifeline->child_fd;
  auto pid = Spawn(opts);
  ASSERT_TRUE(pid.ok());
  close(lifeline->child_fd);
  // It lives while the lifeline is open (checked for 200 ms; closing it
  // ends the process within milliseconds).
  absl::Time until = absl::Now() + absl::Milliseconds(200);
  bool alive = true;
  while (alive && absl::Now() < until) {
    alive = ProcessAlive(*pid);
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(alive);
  close(lifeline->parent_fd);
  EXPECT_TRUE(WaitForExit(*pid, absl::Seconds(5)));
}

TEST(Process, TerminateStopsAProcess) {
  SpawnOptions opts;
  opts.argv = {"/bin/sleep", "60"};
  auto pid = Spawn(opts);
  ASSERT_TRUE(pid.ok());
  EXPECT_TRUE(ProcessAlive(*pid));
  TerminateProcess(*pid, absl::Seconds(2));
  EXPECT_FALSE(ProcessAlive(*pid));
}

}  // namespace
}  // namespace loom
