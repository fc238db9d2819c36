// Unit tests for src/raylet/memory_monitor: the node's memory read from a
// fake /sys/fs/cgroup and /proc in a temporary directory, and the choice of
// the worker to kill.
#include "src/raylet/memory_monitor.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace loom::raylet {
namespace {

class FakeRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/loom-memmon-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    Write("proc/meminfo",
          "MemTotal:       16000000 kB\n"
          "MemFree:         1000000 kB\n"
          "MemAvailable:   12000000 kB\n");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void Write(const std::string& path, const std::string& text) {
    std::filesystem::path p = std::filesystem::path(root_) / path;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  std::string root_;
};

TEST_F(FakeRoot, WithoutACgroupLimitMeminfoCounts) {
  auto m = ReadNodeMemory(root_);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->limit, int64_t{16000000} * 1024);
  EXPECT_EQ(m->used, int64_t{4000000} * 1024);
  EXPECT_EQ(m->source, "/proc/meminfo");
}

TEST_F(FakeRoot, CgroupV2LimitLessInactiveCache) {
  Write("sys/fs/cgroup/memory.max", "2147483648\n");
  Write("sys/fs/cgroup/memory.current", "1610612736\n");
  Write("sys/fs/cgroup/memory.stat",
        "anon 1000\nfile 5000\nactive_file 100\ninactive_file 536870912\n");
  auto m = ReadNodeMemory(root_);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->limit, int64_t{2147483648});
  EXPECT_EQ(m->used, int64_t{1610612736} - 536870912);
  EXPECT_EQ(m->source, "cgroup v2");
}

TEST_F(FakeRoot, CgroupV2WithoutALimitFallsBackToMeminfo) {
  Write("sys/fs/cgroup/memory.max", "max\n");
  Write("sys/fs/cgroup/memory.current", "1610612736\n");
  auto m = ReadNodeMemory(root_);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->source, "/proc/meminfo");
}

TEST_F(FakeRoot, CgroupV1Limit) {
  Write("sys/fs/cgroup/memory/memory.limit_in_bytes", "1073741824\n");
  Write("sys/fs/cgroup/memory/memory.usage_in_bytes", "900000000\n");
  Write("sys/fs/cgroup/memory/memory.stat",
        "inactive_file 7\ntotal_inactive_file 100000000\n");
  auto m = ReadNodeMemory(root_);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->limit, 1073741824);
  EXPECT_EQ(m->used, 800000000);
  EXPECT_EQ(m->source, "cgroup v1");
}

TEST_F(FakeRoot, AnUnlimitedCgroupV1FallsBackToMeminfo) {
  Write("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
  Write("sys/fs/cgroup/memory/memory.usage_in_bytes", "900000000\n");
  auto m = ReadNodeMemory(root_);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->source, "/proc/meminfo");
}

TEST_F(FakeRoot, NothingReadableIsAnError) {
  std::filesystem::remove(std::filesystem::path(root_) / "proc/meminfo");
  EXPECT_FALSE(ReadNodeMemory(root_).ok());
}

TEST_F(FakeRoot, ProcessMemoryIsPssElseRss) {
  Write("proc/42/smaps_rollup",
        "55d0-7ff0 ---p 00000000 00:00 0   [rollup]\n"
        "Rss:                1708 kB\nPss:                 207 kB\n"
        "Pss_Anon:            116 kB\n");
  Write("proc/43/statm", "1000 300 100 1 0 200 0\n");
  EXPECT_EQ(ProcessMemory(root_, 42), 207 * 1024);
  EXPECT_EQ(ProcessMemory(root_, 43), 300 * 4096);
  EXPECT_EQ(ProcessMemory(root_, 44), 0);  // gone
}

TEST(PickVictim, RetriableTasksNewestFirstThenOthersThenActors) {
  absl::Time t0 = absl::FromUnixSeconds(1000);
  std::vector<KillCandidate> c = {
      {WorkerId::FromRandom(), true, true, t0 + absl::Seconds(9)},    // actor
      {WorkerId::FromRandom(), false, false, t0 + absl::Seconds(8)},  // final
      {WorkerId::FromRandom(), false, true, t0 + absl::Seconds(1)},
      {WorkerId::FromRandom(), false, true, t0 + absl::Seconds(2)},
  };
  EXPECT_EQ(PickVictim(c), 3u);  // the newest retriable task
  c.erase(c.begin() + 2, c.end());
  EXPECT_EQ(PickVictim(c), 1u);  // a task before an actor
  c.erase(c.begin() + 1);
  EXPECT_EQ(PickVictim(c), 0u);  // an actor when nothing else runs
  EXPECT_EQ(PickVictim({}), std::nullopt);
}

TEST(PickVictim, AWorkerThatRelievesThePressureComesFirst) {
  absl::Time t0 = absl::FromUnixSeconds(1000);
  std::vector<KillCandidate> c = {
      // A newer retriable lease, idle at 20 MiB, and an older task without
      // retries holding 300 MiB.
      {WorkerId::FromRandom(), false, true, t0 + absl::Seconds(2), 20 << 20},
      {WorkerId::FromRandom(), false, false, t0 + absl::Seconds(1), 300 << 20},
  };
  EXPECT_EQ(PickVictim(c, 150 << 20), 1u);
  // When no worker alone would do, the order without memory decides.
  EXPECT_EQ(PickVictim(c, 400 << 20), 0u);
}

}  // namespace
}  // namespace loom::raylet
