// Unit tests for src/raylet/worker_pool: reaping. The "worker" is a shell
// script that sleeps (it never registers), started as a C++ worker is.
#include "src/raylet/worker_pool.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "src/common/process_watch.h"

namespace loom::raylet {
namespace {

class SleepingWorker : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/loom-pool-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    script_ = dir_ + "/worker.sh";
    std::ofstream(script_) << "#!/bin/sh\nexec sleep 60\n";
    chmod(script_.c_str(), 0755);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  WorkerPool::Options Options(ProcessWatch* watch) {
    WorkerPool::Options options;
    options.worker_binary = script_;
    options.raylet_address = "127.0.0.1:1";
    options.prestart = 0;
    options.watch = watch;
    options.post = [](std::function<void()> fn) { fn(); };
    return options;
  }
  std::string dir_, script_;
};

// The watch can say a process ended while one of its threads is still on
// its way out: the pool must look again later, not forget it.
TEST_F(SleepingWorker, AnEndedProcessThatStillLooksAliveIsLookedAtAgain) {
  ProcessWatch watch([](pid_t) {});  // its notes are given by hand below
  WorkerPool pool(Options(&watch));
  ASSERT_TRUE(pool.StartWorkers(1).ok());
  std::vector<const Worker*> all = pool.All();
  ASSERT_EQ(all.size(), 1u);
  pid_t pid = all[0]->pid;
  WorkerId id = all[0]->id;

  pool.NoteExited(pid);  // early: the process still runs
  EXPECT_TRUE(pool.ReapDead().empty());
  EXPECT_TRUE(pool.ExitsPending());

  ASSERT_EQ(kill(pid, SIGKILL), 0);
  std::vector<Worker> dead;
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (dead.empty() && absl::Now() < deadline) {
    dead = pool.ReapDead();  // no new note: the pending one is enough
    if (dead.empty()) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].id, id);
  EXPECT_FALSE(pool.ExitsPending());
  EXPECT_TRUE(pool.All().empty());
}

// A note for a pid that is no worker's (a driver's) is not kept.
TEST_F(SleepingWorker, ANoteForAnotherProcessIsDropped) {
  ProcessWatch watch([](pid_t) {});
  WorkerPool pool(Options(&watch));
  ASSERT_TRUE(pool.StartWorkers(1).ok());
  pool.NoteExited(getpid());
  EXPECT_TRUE(pool.ReapDead().empty());
  EXPECT_FALSE(pool.ExitsPending());
  EXPECT_EQ(pool.All().size(), 1u);
}

}  // namespace
}  // namespace loom::raylet
