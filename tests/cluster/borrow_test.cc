// Cluster tests: refs inside values, borrowers, and object lifetimes.
#include <signal.h>

#include <fstream>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "loom/loom.h"
#include "tests/cluster/cluster_util.h"
#include "tests/cluster/private_cluster.h"
#include "tests/cluster/test_functions.h"

namespace loom::test {
namespace {

constexpr int64_t kMiB = 1 << 20;
// How often the raylet updates its store gauges (kTickPeriod).
constexpr absl::Duration kRayletTick = absl::Milliseconds(100);

double StoreUsed(const std::string& session) {
  return RayletMetric(session, "loom_object_store_used_bytes");
}

TEST_F(PrivateClusterTest, RefsInsideValuesKeepTheirObjectsAlive) {
  StartCluster(2, 256 * kMiB);
  // Put: the outer value holds the inner object after its ref is gone.
  ObjectRef<PatternRefs> outer;
  {
    auto inner = Put(Pattern(kMiB));
    outer = Put(PatternRefs{inner});
  }
  auto refs = Get(outer, 30000);
  ASSERT_EQ(refs->size(), 1u);
  EXPECT_TRUE(IsPattern(*Get((*refs)[0], 30000)));
  // Read by a task: the worker borrows the inner object from this driver.
  EXPECT_TRUE(*Get(Task(AllPatterns).Remote(outer), 30000));
  // A parameter that is a ref arrives unresolved.
  EXPECT_EQ(*Get(Task(SizeOfRef).Remote((*refs)[0]), 30000), kMiB);

  // Made and owned by a worker, whose own ref is gone when it returns: the
  // object stays in the store (a free would show within a few of the
  // raylet's ticks, which update the gauge).
  std::string session = SessionDir();
  auto made = Get(Task(PutInside).Remote(2 * kMiB), 30000);
  EXPECT_TRUE(WaitUntil([&] { return StoreUsed(session) >= 3 * kMiB; },
                        absl::Seconds(5)));
  EXPECT_TRUE(StaysTrue([&] { return StoreUsed(session) >= 3 * kMiB; },
                        5 * kRayletTick))
      << StoreUsed(session) << " bytes used: the borrowed object was freed";
  EXPECT_TRUE(IsPattern(*Get(made->second[0], 30000)));
  // Handed back by a borrower: this driver then borrows from the owner.
  auto passed = Get(Task(PassThrough).Remote(made->second), 30000);
  made.reset();
  ASSERT_EQ(passed->size(), 1u);
  EXPECT_EQ(Get((*passed)[0], 30000)->size(), static_cast<size_t>(2 * kMiB));
  EXPECT_TRUE(*Get(Task(AllPatterns).Remote(*passed), 30000));
}

TEST_F(PrivateClusterTest, StoreMemoryReturnsToBaselineWhenRefsDrop) {
  StartCluster(2, 256 * kMiB);
  std::string session = SessionDir();
  ASSERT_EQ(StoreUsed(session), 0);
  {
    auto inner = Put(Pattern(3 * kMiB));
    auto outer = Put(PatternRefs{inner, Put(Pattern(kMiB))});
    auto made = Get(Task(PutInside).Remote(2 * kMiB), 30000);
    auto passed = Get(Task(PassThrough).Remote(made->second), 30000);
    auto big = Task(Pattern).Remote(4 * kMiB);
    EXPECT_TRUE(*Get(Task(AllPatterns).Remote(outer), 30000));
    EXPECT_TRUE(*Get(Task(AllPatterns).Remote(*passed), 30000));
    EXPECT_EQ(Get(big, 30000)->size(), static_cast<size_t>(4 * kMiB));
    EXPECT_TRUE(WaitUntil([&] { return StoreUsed(session) >= 10 * kMiB; },
                          absl::Seconds(5)));
  }
  // Every object, owned here or by a worker, is deleted.
  EXPECT_TRUE(
      WaitUntil([&] { return StoreUsed(session) == 0; }, absl::Seconds(10)))
      << StoreUsed(session) << " bytes still used";
}

// Refs inside an actor's creation arguments are held while it may restart,
// and released once it is dead for good: killed, it no longer keeps the
// object after its creator drops its own ref.
TEST_F(PrivateClusterTest, RefsInsideAKilledActorsCreationArgsAreFreed) {
  StartCluster(2, 256 * kMiB);
  std::string session = SessionDir();
  ASSERT_EQ(StoreUsed(session), 0);
  auto inner = Put(Pattern(4 * kMiB));
  auto holder = Actor(MakeCounterHolding).Remote(PatternRefs{inner});
  int pid = *Get(holder.Task(&Counter::Pid).Remote(), 30000);
  EXPECT_TRUE(WaitUntil([&] { return StoreUsed(session) >= 4 * kMiB; },
                        absl::Seconds(5)));
  Kill(holder);
  ASSERT_TRUE(WaitUntil([&] { return kill(pid, 0) != 0; }, absl::Seconds(10)));
  inner = ObjectRef<std::string>();
  EXPECT_TRUE(
      WaitUntil([&] { return StoreUsed(session) == 0; }, absl::Seconds(10)))
      << StoreUsed(session) << " bytes still used: the creation's refs leaked";
}

TEST_F(PrivateClusterTest, AGetWhoseOwnerDiedFailsPromptly) {
  StartCluster(2, 256 * kMiB);
  auto made = Get(Task(PutInside).Remote(kMiB), 30000);
  ASSERT_EQ(kill(made->first, SIGKILL), 0);
  absl::Time start = absl::Now();
  EXPECT_THROW(Get(made->second[0], 30000), OwnerDiedError);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(PrivateClusterTest, AReaderKilledWhileHoldingPinsReleasesThem) {
  StartCluster(2, 256 * kMiB);
  std::string session = SessionDir();
  std::string pid_file = root_.path() + "/holder.pid";
  std::vector<uint8_t> bytes(4 * kMiB, 7);
  auto ref = Put(Buffer::Copy(bytes.data(), bytes.size()));
  auto held = Task(HoldBuffer).SetMaxRetries(0).Remote(pid_file, ref, 60000);
  pid_t holder = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::ifstream in(pid_file);
        return static_cast<bool>(in >> holder) && holder > 0;
      },
      absl::Seconds(30)));
  EXPECT_TRUE(WaitUntil([&] { return StoreUsed(session) >= 4 * kMiB; },
                        absl::Seconds(5)));
  ref = ObjectRef<Buffer>();  // freed once the task is done and unpinned
  ASSERT_EQ(kill(holder, SIGKILL), 0);
  EXPECT_THROW(Get(held, 30000), WorkerCrashedError);
  EXPECT_TRUE(
      WaitUntil([&] { return StoreUsed(session) == 0; }, absl::Seconds(10)))
      << StoreUsed(session) << " bytes still used: the pin leaked";
}

}  // namespace
}  // namespace loom::test
