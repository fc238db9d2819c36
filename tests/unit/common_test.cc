// Unit tests for src/common: IDs, the event loop, sessions, processes.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "src/common/daemon.h"
#include "src/common/event_loop.h"
#include "src/common/ids.h"
#include "src/common/logging.h"
#include "src/common/memory_trim.h"
#include "src/common/process.h"
#include "src/common/process_watch.h"
#include "src/common/session.h"
#include "src/common/work_queue.h"

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

TEST(EventLoop, PostLazyRidesOnOtherWorkAndKeepsItsLatest) {
  ManualClock clock;
  EventLoop loop("test", &clock);
  loop.Start();
  std::atomic<int> fired{0};
  loop.PostLazy(absl::Seconds(1), absl::Seconds(9), [&] { fired++; });
  auto pass = [&] {
    loop.RunSync([] {});
    loop.RunSync([] {});
  };
  pass();
  EXPECT_EQ(fired, 0) << "ran before its delay";
  clock.Advance(absl::Seconds(1));
  pass();  // other work woke the loop past the delay: it runs now
  EXPECT_EQ(fired, 1);

  loop.PostLazy(absl::Seconds(1), absl::Seconds(9), [&] { fired++; });
  clock.Advance(absl::Seconds(10));  // nothing else posted: its latest
  for (int i = 0; i < 100 && fired < 2; ++i)
    absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(fired, 2);
}

TEST(EventLoop, AnIdleLoopDoesNotWake) {
  EventLoop loop("test");
  loop.Start();
  loop.RunSync([] {});
  // Nothing posted and no timers: the loop thread sleeps. Its voluntary
  // context switches over 300 ms stay near zero (a 50 ms poll made ~6).
  std::string status_path;
  loop.RunSync([&] {
    status_path = absl::StrCat("/proc/self/task/", gettid(), "/status");
  });
  auto switches = [&] {
    std::ifstream in(status_path);
    std::string line;
    while (std::getline(in, line)) {
      if (absl::StartsWith(line, "voluntary_ctxt_switches:")) {
        return std::stoi(line.substr(line.find(':') + 1));
      }
    }
    return -1;
  };
  int before = switches();
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_LE(switches() - before, 1);
}

TEST(EventLoop, RunSyncAfterStopRunsInline) {
  EventLoop loop("test");
  loop.Start();
  loop.Stop();
  bool ran = false;
  loop.RunSync([&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST(ProcessWatch, SaysWhenAProcessEnds) {
  absl::Mutex mu;
  std::vector<pid_t> ended;
  ProcessWatch watch([&](pid_t pid) {
    absl::MutexLock lock(&mu);
    ended.push_back(pid);
  });
  SpawnOptions quick, slow;
  quick.argv = {"/bin/sleep", "0.2"};
  slow.argv = {"/bin/sleep", "30"};
  auto a = Spawn(quick);
  auto b = Spawn(slow);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(watch.Watch(*a));
  ASSERT_TRUE(watch.Watch(*b));
  {
    absl::MutexLock lock(&mu);
    auto one = [&] { return !ended.empty(); };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&one), absl::Seconds(5)));
    EXPECT_EQ(ended, std::vector<pid_t>{*a});
  }
  waitpid(*a, nullptr, 0);
  watch.Forget(*b);  // not said once forgotten
  kill(*b, SIGKILL);
  waitpid(*b, nullptr, 0);
  absl::SleepFor(absl::Milliseconds(100));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(ended.size(), 1u);
  EXPECT_FALSE(watch.Watch(*b)) << "a reaped process cannot be watched";
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

// A worker's log file appears with its first message, not before: most
// workers log nothing. In a child (EXPECT_EXIT): the default logger is the
// process's.
void LogToAFileCreatedOnFirstMessage(const std::string& dir) {
  const std::string path = dir + "/worker-7.log";
  InitLogging("worker-7", dir, /*create_on_first_message=*/true);
  bool none_before = access(path.c_str(), F_OK) != 0;
  spdlog::info("first words");
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  _exit(none_before && absl::StrContains(text, "[info] first words") ? 0 : 1);
}

TEST(LoggingDeathTest, AWorkersLogFileAppearsWithItsFirstMessage) {
  char tmpl[] = "/tmp/ll_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  EXPECT_EXIT(LogToAFileCreatedOnFirstMessage(tmpl),
              ::testing::ExitedWithCode(0), "");
  std::system(absl::StrCat("rm -rf ", tmpl).c_str());
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

TEST(Process, SpawnsAChildThatMuchNicer) {
  errno = 0;
  const int ours = getpriority(PRIO_PROCESS, 0);
  ASSERT_EQ(errno, 0);
  SpawnOptions opts;
  opts.argv = {"/bin/sleep", "60"};
  opts.niceness = 5;
  auto pid = Spawn(opts);
  ASSERT_TRUE(pid.ok());
  errno = 0;
  EXPECT_EQ(getpriority(PRIO_PROCESS, *pid), std::min(19, ours + 5));
  EXPECT_EQ(errno, 0);
  EXPECT_EQ(getpriority(PRIO_PROCESS, 0), ours) << "ours is unchanged";
  TerminateProcess(*pid, absl::Seconds(2));
}

// Well under the limit the check reads only the descriptor table's size;
// near it, it counts what is open and names the limit it would hit. In a
// child (EXPECT_EXIT): the limit set is the process's.
void CheckHeadroomUnderALowLimit() {
  rlimit lim{256, 256};
  setrlimit(RLIMIT_NOFILE, &lim);
  bool fine = CheckDescriptorHeadroom(10, "the test", "a worker").ok();
  for (int i = 0; i < 200; ++i) dup(0);
  absl::SleepFor(absl::Milliseconds(110));  // past the count's reuse
  absl::Status s = CheckDescriptorHeadroom(40, "the test", "a worker");
  bool named = absl::IsResourceExhausted(s) &&
               absl::StrContains(s.message(),
                                 "out of file descriptors: the test has 2") &&
               absl::StrContains(s.message(), "RLIMIT_NOFILE (256)");
  _exit(fine && named ? 0 : 1);
}

TEST(DaemonDeathTest, DescriptorHeadroomNamesTheLimitNearIt) {
  EXPECT_EXIT(CheckHeadroomUnderALowLimit(), ::testing::ExitedWithCode(0), "");
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

// A WorkQueue runs at most its threads' worth at once, and its destructor
// runs what is still queued before it joins.
TEST(WorkQueue, BoundedAndDrainedOnDestruction) {
  std::atomic<int> running{0}, most{0};
  std::vector<int> order;
  absl::Mutex mu;
  absl::Notification release;
  {
    WorkQueue queue("test", 2);
    for (int i = 0; i < 6; ++i) {
      queue.Post([&, i] {
        int now = ++running;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        release.WaitForNotification();
        {
          absl::MutexLock lock(&mu);
          order.push_back(i);
        }
        --running;
      });
    }
    absl::SleepFor(absl::Milliseconds(100));
    EXPECT_EQ(running.load(), 2);  // two threads: the rest wait their turn
    EXPECT_EQ(queue.queued(), 4u);
    release.Notify();
  }  // the destructor ran the rest
  EXPECT_EQ(most.load(), 2);
  ASSERT_EQ(order.size(), 6u);
  std::sort(order.begin(), order.end());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5}));
}

TEST(MemoryTrim, GivesBackWhatAThreadFreedOnceEnoughPiledUp) {
  // A thread's arena: 64 MiB in 1 KiB blocks, written, then all freed but
  // every 64th (what stays pins the arena's top, as live objects do in a
  // daemon), so only a trim of the free pages inside it gives them back.
  std::vector<char*> kept;
  std::thread([&] {
    std::vector<char*> blocks(64 << 10);
    for (char*& b : blocks) {
      b = static_cast<char*>(malloc(1024));
      std::fill(b, b + 1024, 'x');
    }
    for (size_t i = 0; i < blocks.size(); ++i) {
      if (i % 64 == 0) {
        kept.push_back(blocks[i]);
      } else {
        free(blocks[i]);
      }
    }
  }).join();
  MemoryTrim trim({.period = absl::Seconds(5), .free_bytes = 4 << 20});
  absl::Time t0 = absl::Now();
  int64_t before = RssAnonKb();
  EXPECT_TRUE(trim.Maybe(t0));
  int64_t after = RssAnonKb();
  EXPECT_LT(after, before - 32 * 1024) << before << " KiB -> " << after;
  // Not again within the period, nor when little is free.
  EXPECT_FALSE(trim.Maybe(t0 + absl::Seconds(1)));
  MemoryTrim high({.period = absl::Seconds(5), .free_bytes = size_t{1} << 40});
  EXPECT_FALSE(high.Maybe(t0));
  for (char* b : kept) free(b);
}

}  // namespace
}  // namespace loom
