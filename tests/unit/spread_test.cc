// SPREAD in the task submitter: the SpreadDealer's turns, and a submitter
// that deals short SPREAD tasks to three fake nodes (the local raylet
// spilling its requests to the others in turn), waiting for a node whose
// worker starts late, but not for one whose lease never comes.
#include <gtest/gtest.h>

#include "runtime/spread_dealer.h"
#include "runtime/task_submitter.h"
#include "tests/unit/fake_peers.h"
#include "tests/unit/submitter_harness.h"

namespace loom {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

TEST(SpreadDealerTest, ANodeRunsAtMostSlackTasksAheadOfTheLast) {
  SpreadDealer dealer({.slack = 3, .hold = absl::Seconds(5)});
  dealer.Leased("a", kT0);
  dealer.Leased("b", kT0);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(dealer.MayTake("a", kT0));
    dealer.Took("a");
  }
  EXPECT_FALSE(dealer.MayTake("a", kT0));
  EXPECT_TRUE(dealer.MayTake("b", kT0));
  dealer.Took("b");
  EXPECT_TRUE(dealer.MayTake("a", kT0));
  // Without b, a runs alone.
  dealer.Dropped("b");
  for (int i = 0; i < 10; ++i) dealer.Took("a");
  EXPECT_TRUE(dealer.MayTake("a", kT0));
}

TEST(SpreadDealerTest, ANodeThatJoinsStartsLevelWithTheFewest) {
  SpreadDealer dealer({.slack = 3, .hold = absl::Seconds(5)});
  dealer.Leased("a", kT0);
  for (int i = 0; i < 100; ++i) dealer.Took("a");
  dealer.Leased("b", kT0);
  // b is not owed 100 tasks: a goes on as soon as b has taken its turn.
  for (int i = 0; i < 3; ++i) dealer.Took("a");
  EXPECT_FALSE(dealer.MayTake("a", kT0));
  dealer.Took("b");
  EXPECT_TRUE(dealer.MayTake("a", kT0));
}

TEST(SpreadDealerTest, ANodeAskedForALeaseHoldsTheOthersForAWhile) {
  SpreadDealer dealer({.slack = 2, .hold = absl::Seconds(5)});
  dealer.Leased("a", kT0);
  dealer.Asked("b", kT0);
  EXPECT_EQ(dealer.HoldEnds(kT0), kT0 + absl::Seconds(5));
  dealer.Took("a");
  dealer.Took("a");
  EXPECT_FALSE(dealer.MayTake("a", kT0 + absl::Seconds(1)));
  // Asking again does not hold a longer.
  dealer.Asked("b", kT0 + absl::Seconds(4));
  EXPECT_TRUE(dealer.MayTake("a", kT0 + absl::Seconds(5)));
  EXPECT_EQ(dealer.HoldEnds(kT0 + absl::Seconds(5)), std::nullopt);
  // Its lease comes after all: level with a, it holds a again.
  dealer.Took("a");
  dealer.Answered("b");
  dealer.Leased("b", kT0 + absl::Seconds(6));
  dealer.Took("a");
  dealer.Took("a");
  EXPECT_FALSE(dealer.MayTake("a", kT0 + absl::Seconds(6)));
}

constexpr char kRaylets[3][16] = {"10.0.0.1:7001", "10.0.0.2:7001",
                                  "10.0.0.3:7001"};
constexpr int kSlack = 16;

class SpreadSubmitterTest : public ::testing::Test {
 protected:
  SpreadSubmitterTest() {
    for (int i = 0; i < 3; ++i) {
      std::string host = "10.0.0." + std::to_string(i + 1);
      raylets_[i].WorkersAt(host, 9001, 2);
      h_.pool.Serve(kRaylets[i], &raylets_[i]);
      for (int w = 0; w < 2; ++w) {
        h_.pool.Serve(host + ":" + std::to_string(9001 + w), &workers_[i][w]);
      }
    }
    // The local raylet places SPREAD requests on the nodes in turn.
    raylets_[0].SpillInTurn({"", kRaylets[1], kRaylets[2]});
    h_.loop.Start();
  }
  ~SpreadSubmitterTest() override {
    for (auto& r : raylets_) r.ReleaseGrants();
  }

  void Start(absl::Duration hold) {
    TaskSubmitter::Options options = h_.Options(kRaylets[0]);
    options.spread_slack = kSlack;
    options.spread_hold = hold;
    h_.Start(options);
  }

  std::vector<ObjectId> SubmitSpread(int n) {
    std::vector<ObjectId> out;
    for (int i = 0; i < n; ++i)
      out.push_back(h_.SubmitNoop(0, /*spread=*/true));
    return out;
  }

  void ExpectAllRan(const std::vector<ObjectId>& refs) {
    for (const ObjectId& ref : refs) {
      auto results = h_.objects.Get({ref}, absl::Now() + absl::Seconds(10));
      ASSERT_TRUE(results.has_value()) << "no result for " << ref.Hex();
      ASSERT_FALSE((*results)[0].error) << (*results)[0].error->message();
    }
  }

  // Tasks run on node i's workers.
  int Ran(int i) {
    return static_cast<int>(workers_[i][0].ran().size() +
                            workers_[i][1].ran().size());
  }

  FakeRaylet raylets_[3];
  FakeWorker workers_[3][2];
  SubmitterHarness h_{"spread-test"};  // after the fakes
};

TEST_F(SpreadSubmitterTest, ShortTasksWaitTheirTurnOnNodesWhoseWorkersStart) {
  Start(absl::Seconds(30));
  raylets_[1].HoldGrants();  // their workers are starting
  raylets_[2].HoldGrants();
  std::vector<ObjectId> refs = SubmitSpread(300);
  // The local node runs its turn, then waits for the others.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (Ran(0) < kSlack && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_GE(Ran(0), kSlack);
  EXPECT_LE(Ran(0), kSlack + 4);  // + those run before the others were asked
  raylets_[1].ReleaseGrants();
  raylets_[2].ReleaseGrants();
  ExpectAllRan(refs);
  EXPECT_EQ(Ran(0) + Ran(1) + Ran(2), 300);
  for (int i = 0; i < 3; ++i) {
    EXPECT_GE(Ran(i), 100 - kSlack - 4) << "node " << i;
  }
}

TEST_F(SpreadSubmitterTest, ANodeWhoseLeaseNeverComesHoldsTheOthersForAWhile) {
  Start(absl::Milliseconds(300));
  raylets_[2].HoldGrants();  // never released until the end
  absl::Time start = absl::Now();
  std::vector<ObjectId> refs = SubmitSpread(300);
  ExpectAllRan(refs);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_EQ(Ran(2), 0);
  EXPECT_EQ(Ran(0) + Ran(1), 300);
  EXPECT_GE(Ran(1), 100);
}

}  // namespace
}  // namespace loom
