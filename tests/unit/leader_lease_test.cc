// The leader lease between heads on one real redis-server: a standby waits
// while the holder renews, takes over once it stops, at once when it lets
// go; a head whose lease another took is told.
#include "src/gcs/leader_lease.h"

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/redis_server.h"

namespace loom::gcs {
namespace {

using test::RedisServer;
using ::testing::HasSubstr;

constexpr absl::Duration kTtl = absl::Seconds(1);

class LeaderLeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto redis = RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = std::move(*redis);
  }

  std::unique_ptr<LeaderLease> Lease(const std::string& holder,
                                     absl::Duration ttl = kTtl) {
    auto lease = LeaderLease::Connect(
        {.storage = redis_->url(), .holder = holder, .ttl = ttl});
    EXPECT_TRUE(lease.ok()) << lease.status();
    return lease.ok() ? *std::move(lease) : nullptr;
  }

  // Takes `lease` as a standby does, on a thread; the future is ready once
  // it holds the lease.
  std::future<absl::Status> TakeWaiting(LeaderLease* lease) {
    return std::async(std::launch::async, [this, lease] {
      return lease->Take(/*wait=*/true, [this](const std::string& holder) {
        absl::MutexLock lock(&mu_);
        seen_holder_ = holder;
      });
    });
  }

  std::string seen_holder() {
    absl::MutexLock lock(&mu_);
    return seen_holder_;
  }

  std::unique_ptr<RedisServer> redis_;
  absl::Mutex mu_;
  std::string seen_holder_;
};

TEST_F(LeaderLeaseTest, AStandbyWaitsWhileTheHolderRenewsThenTakesOver) {
  auto active = Lease("10.0.0.1:6379");
  auto standby = Lease("10.0.0.2:6379");
  ASSERT_NE(active, nullptr);
  ASSERT_NE(standby, nullptr);
  ASSERT_TRUE(active->Take(/*wait=*/false, nullptr).ok());
  active->KeepRenewing([](const std::string&) {});

  auto taken = TakeWaiting(standby.get());
  // Three lease lengths: the holder's renewals keep it out.
  EXPECT_EQ(taken.wait_for(std::chrono::seconds(3)),
            std::future_status::timeout);
  EXPECT_EQ(seen_holder(), active->id());

  absl::Time stopped = absl::Now();
  active.reset();  // stops renewing, as a killed head does
  ASSERT_EQ(taken.wait_for(std::chrono::seconds(10)),
            std::future_status::ready);
  EXPECT_TRUE(taken.get().ok());
  // Within the lease's length and a poll, with room for a slow machine.
  EXPECT_LT(absl::Now() - stopped, 4 * kTtl);
}

TEST_F(LeaderLeaseTest, AReleasedLeaseIsTakenAtOnce) {
  auto active = Lease("10.0.0.1:6379", absl::Seconds(30));
  auto standby = Lease("10.0.0.2:6379", absl::Seconds(30));
  ASSERT_NE(active, nullptr);
  ASSERT_NE(standby, nullptr);
  ASSERT_TRUE(active->Take(/*wait=*/false, nullptr).ok());
  auto taken = TakeWaiting(standby.get());
  EXPECT_EQ(taken.wait_for(std::chrono::seconds(1)),
            std::future_status::timeout);
  active->Release();
  // A poll or two, not the 30 s lease.
  ASSERT_EQ(taken.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(taken.get().ok());
}

TEST_F(LeaderLeaseTest, AHeadWhoseLeaseAnotherTookIsTold) {
  auto first = Lease("10.0.0.1:6379");
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(first->Take(/*wait=*/false, nullptr).ok());
  std::promise<std::string> lost;
  first->KeepRenewing(
      [&lost](const std::string& holder) { lost.set_value(holder); });
  auto lost_to = lost.get_future();
  EXPECT_EQ(lost_to.wait_for(std::chrono::seconds(2)),
            std::future_status::timeout);

  auto second = Lease("10.0.0.1:6379");  // started again by hand
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(second->Take(/*wait=*/false, nullptr).ok());
  ASSERT_EQ(lost_to.wait_for(std::chrono::seconds(5)),
            std::future_status::ready);
  std::string holder = lost_to.get();
  EXPECT_EQ(holder, second->id());
  EXPECT_NE(holder, first->id());  // same address, another holder
}

// Redis down is no reason for a standby to give up: it goes on trying, and
// takes the lease from a server that came back without it.
TEST_F(LeaderLeaseTest, AStandbyKeepsTryingWhileRedisIsDown) {
  auto standby = Lease("10.0.0.2:6379");
  ASSERT_NE(standby, nullptr);
  {
    auto active = Lease("10.0.0.1:6379", absl::Seconds(30));
    ASSERT_NE(active, nullptr);
    ASSERT_TRUE(active->Take(/*wait=*/false, nullptr).ok());
  }
  auto taken = TakeWaiting(standby.get());
  EXPECT_EQ(taken.wait_for(std::chrono::seconds(1)),
            std::future_status::timeout);
  EXPECT_THAT(seen_holder(), HasSubstr("10.0.0.1:6379"));
  redis_->Kill();
  EXPECT_EQ(taken.wait_for(std::chrono::seconds(2)),
            std::future_status::timeout);
  ASSERT_TRUE(redis_->Restart().ok());  // not persistent: the lease is gone
  ASSERT_EQ(taken.wait_for(std::chrono::seconds(15)),
            std::future_status::ready);
  EXPECT_TRUE(taken.get().ok());
}

}  // namespace
}  // namespace loom::gcs
