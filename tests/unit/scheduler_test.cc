// Unit tests for scheduler/: fixed point, resource sets, GPU instances and
// the lease queue policy with an injected clock.
#include <set>

#include "gtest/gtest.h"
#include "scheduler/cluster_scheduler.h"
#include "scheduler/lease_queue.h"
#include "src/common/clock.h"

namespace loom {
namespace {

ResourceSet R(std::map<std::string, double> m) {
  return *ResourceSet::FromMap(m);
}

TEST(FixedPoint, FractionsAddUpExactly) {
  FixedPoint a = FixedPoint::FromDouble(0.1), b = FixedPoint::FromDouble(0.2);
  EXPECT_EQ(a + b, FixedPoint::FromDouble(0.3));
  FixedPoint sum;
  for (int i = 0; i < 1000; ++i) sum += FixedPoint::FromDouble(0.001);
  EXPECT_EQ(sum, FixedPoint::FromInt(1));
  EXPECT_EQ(FixedPoint::FromDouble(0.25).ToString(), "0.25");
  EXPECT_EQ(FixedPoint::FromInt(3).ToString(), "3");
}

TEST(ResourceSet, RefusesBadQuantities) {
  for (const std::map<std::string, double>& bad :
       std::vector<std::map<std::string, double>>{{{"CPU", -1}},
                                                  {{"CPU", std::nan("")}},
                                                  {{"CPU", 1e300}},
                                                  {{"", 1}},
                                                  {{"GPU", 1.5}},
                                                  {{"CPU", 0.00001}}}) {
    EXPECT_EQ(ResourceSet::FromMap(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad.begin()->first << " " << bad.begin()->second;
  }
  EXPECT_TRUE(ResourceSet::FromMap({{"GPU", 0.25}}).ok());
  EXPECT_TRUE(ResourceSet::FromMap({{"GPU", 2}}).ok());
}

TEST(ResourceSet, ContainsAddSubtract) {
  ResourceSet total = R({{"CPU", 4}, {"x", 1}});
  EXPECT_TRUE(total.Contains(R({{"CPU", 4}})));
  EXPECT_FALSE(total.Contains(R({{"CPU", 4.5}})));
  EXPECT_FALSE(total.Contains(R({{"y", 1}})));
  total.Subtract(R({{"CPU", 0.5}, {"x", 1}}));
  EXPECT_EQ(total.ToString(), "{CPU: 3.5}");
  total.Add(R({{"x", 1}}));
  EXPECT_EQ(total.ToString(), "{CPU: 3.5, x: 1}");
}

TEST(ResourceSet, CpusCountsPlainOrBundleCpu) {
  EXPECT_EQ(R({}).Cpus(), 0);
  EXPECT_EQ(R({{"CPU", 2}, {"GPU", 1}}).Cpus(), 2);
  EXPECT_EQ(R({{"CPU", 0.5}}).Cpus(), 0.5);
  // Inside a placement group the demand names the bundle's CPU instead.
  EXPECT_EQ(R({{"CPU_group_0_ab", 3}, {"CPU_group_ab", 3}}).Cpus(), 3);
  EXPECT_EQ(R({{"CPUS_custom", 8}, {"bundle_group_ab", 0.001}}).Cpus(), 0);
}

TEST(NodeResources, FractionalGpusPackBeforeTheNextGpu) {
  NodeResources node(R({{"CPU", 8}, {"GPU", 2}}));
  auto a = node.Acquire(R({{"GPU", 0.25}}));
  auto b = node.Acquire(R({{"GPU", 0.5}}));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->gpu_ids, std::vector<int>{0});
  EXPECT_EQ(b->gpu_ids, std::vector<int>{0});
  auto whole = node.Acquire(R({{"GPU", 1}}));
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->gpu_ids, std::vector<int>{1});
  // GPU 0 has 0.25 left: a half does not fit anywhere now.
  EXPECT_FALSE(node.CanFit(R({{"GPU", 0.5}})));
  EXPECT_TRUE(node.CanFit(R({{"GPU", 0.25}})));
  node.Release(*whole);
  node.Release(*a);
  node.Release(*b);
  EXPECT_EQ(node.available(), node.total());
  EXPECT_TRUE(node.CanFit(R({{"GPU", 2}})));
}

TEST(NodeResources, GpuMemoryIsReservedPerGpu) {
  // One GPU declared with 16 GB (--gpu-memory): two 8 GB requests share it,
  // a third waits; more than a GPU holds can never run.
  NodeResources node(R({{"CPU", 8}, {"GPU", 1}, {"gpu_memory", 16e9}}));
  auto a = node.Acquire(R({{"gpu_memory", 8e9}}));
  auto b = node.Acquire(R({{"GPU", 0.25}, {"gpu_memory", 8e9}}));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->gpu_ids, std::vector<int>{0});
  EXPECT_EQ(b->gpu_ids, std::vector<int>{0});
  EXPECT_FALSE(node.CanFit(R({{"gpu_memory", 8e9}})));
  EXPECT_FALSE(node.Acquire(R({{"gpu_memory", 8e9}})));
  EXPECT_TRUE(node.IsFeasible(R({{"gpu_memory", 8e9}})));
  EXPECT_FALSE(node.IsFeasible(R({{"gpu_memory", 17e9}})));
  node.Release(*a);
  EXPECT_TRUE(node.CanFit(R({{"gpu_memory", 8e9}})));
  node.Release(*b);
  EXPECT_EQ(node.available(), node.total());
}

TEST(NodeResources, GpuMemoryPicksAGpuWithRoom) {
  NodeResources node(R({{"GPU", 2}, {"gpu_memory", 32e9}}));  // 16 GB each
  auto a = node.Acquire(R({{"gpu_memory", 12e9}}));
  auto b = node.Acquire(R({{"gpu_memory", 12e9}}));
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->gpu_ids, b->gpu_ids);  // 4 GB left on the first: not enough
  EXPECT_FALSE(node.CanFit(R({{"gpu_memory", 8e9}})));
  EXPECT_FALSE(node.IsFeasible(R({{"GPU", 2}, {"gpu_memory", 1e9}})));
}

TEST(NodeResources, WholeGpusNeedWholeFreeInstances) {
  NodeResources node(R({{"GPU", 2}}));
  auto frac = node.Acquire(R({{"GPU", 0.5}}));
  ASSERT_TRUE(frac);
  EXPECT_FALSE(node.CanFit(R({{"GPU", 2}})));  // 1.5 free, but not 2 whole
  EXPECT_TRUE(node.IsFeasible(R({{"GPU", 2}})));
  EXPECT_FALSE(node.IsFeasible(R({{"GPU", 3}})));
}

TEST(NodeResources, LendingReturnsCpuWhileBlocked) {
  NodeResources node(R({{"CPU", 1}}));
  auto a = node.Acquire(R({{"CPU", 1}}));
  ASSERT_TRUE(a);
  EXPECT_FALSE(node.CanFit(R({{"CPU", 1}})));
  node.Lend(R({{"CPU", 1}}));
  auto b = node.Acquire(R({{"CPU", 1}}));
  ASSERT_TRUE(b);
  node.Reclaim(R({{"CPU", 1}}));  // resumes: briefly oversubscribed
  EXPECT_LT(node.available().Get(kCpu), FixedPoint());
  node.Release(*b);
  node.Release(*a);
  EXPECT_EQ(node.available(), node.total());
}

class LeaseQueueTest : public ::testing::Test {
 protected:
  ManualClock clock;
  LeaseQueue queue{LeaseQueue::Options{absl::Seconds(3)}};
  NodeResources node{R({{"CPU", 2}})};
  std::vector<RemoteNode> others;
};

TEST_F(LeaseQueueTest, GrantsWhatFitsAndQueuesTheRest) {
  for (uint64_t h = 1; h <= 3; ++h) {
    queue.Add(h, R({{"CPU", 1}}), true, clock.Now());
  }
  auto d = queue.Schedule(clock.Now(), node, others);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].kind, LeaseDecision::kGrant);
  EXPECT_EQ(d[0].handle, 1u);
  EXPECT_EQ(d[1].handle, 2u);
  EXPECT_EQ(queue.size(), 1u);
  EXPECT_EQ(queue.PendingDemands().size(), 1u);
  node.Release(d[0].allocation);
  d = queue.Schedule(clock.Now(), node, others);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].handle, 3u);
}

// Holds odd handles; counts grants.
class OddGate : public LeaseGate {
 public:
  bool Holds(uint64_t handle, const ResourceSet&) override {
    return handle % 2 == 1;
  }
  void Granted(uint64_t handle, const ResourceSet&) override {
    granted.push_back(handle);
  }
  std::vector<uint64_t> granted;
};

TEST_F(LeaseQueueTest, AGateHoldsRequestsHereWithoutSpillingThem) {
  for (uint64_t h = 1; h <= 4; ++h) {
    queue.Add(h, R({{"CPU", 1}}), true, clock.Now());
  }
  OddGate gate;
  auto d = queue.Schedule(clock.Now(), node, others, {}, &gate);
  ASSERT_EQ(d.size(), 2u);  // 2 and 4 granted here; 1 and 3 held
  EXPECT_EQ(d[0].handle, 2u);
  EXPECT_EQ(d[1].handle, 4u);
  EXPECT_EQ(d[0].kind, LeaseDecision::kGrant);
  EXPECT_EQ(gate.granted, (std::vector<uint64_t>{2, 4}));
  EXPECT_EQ(queue.size(), 2u);
  // Held requests are no demand for more nodes.
  EXPECT_TRUE(queue.PendingDemands().empty());
  // Without the gate they go (spilled: this node is full). With the gate
  // they would stay, wherever there is room.
  others.push_back(RemoteNode{"n2", "h", 1, R({{"CPU", 4}}), R({{"CPU", 4}})});
  EXPECT_TRUE(queue.Schedule(clock.Now(), node, others, {}, &gate).empty());
  d = queue.Schedule(clock.Now(), node, others);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].kind, LeaseDecision::kSpillback);
}

TEST_F(LeaseQueueTest, SpillsBackToANodeWithTheResource) {
  others.push_back(RemoteNode{"n2", "127.0.0.1", 7001,
                              R({{"CPU", 1}, {"gpu_box", 1}}),
                              R({{"CPU", 1}, {"gpu_box", 1}})});
  queue.Add(1, R({{"CPU", 1}, {"gpu_box", 1}}), true, clock.Now());
  auto d = queue.Schedule(clock.Now(), node, others);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, LeaseDecision::kSpillback);
  EXPECT_EQ(d[0].target->port, 7001);
}

TEST_F(LeaseQueueTest, SpilledRequestsAreNeverSpilledAgain) {
  others.push_back(RemoteNode{"n2", "h", 1, R({{"CPU", 4}}), R({{"CPU", 4}})});
  auto busy = node.Acquire(R({{"CPU", 2}}));
  queue.Add(1, R({{"CPU", 1}}), /*allow_spillback=*/false, clock.Now());
  EXPECT_TRUE(queue.Schedule(clock.Now(), node, others).empty());
  queue.Add(2, R({{"CPU", 1}}), /*allow_spillback=*/true, clock.Now());
  auto d = queue.Schedule(clock.Now(), node, others);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].handle, 2u);
  EXPECT_EQ(d[0].kind, LeaseDecision::kSpillback);
}

TEST_F(LeaseQueueTest, InfeasibleFailsAfterTheGracePeriod) {
  queue.Add(1, R({{"CPU", 1}, {"unicorn", 1}}), true, clock.Now());
  // No node known here can run it: the head is asked, once, and the
  // request waits meanwhile.
  auto asked = queue.Schedule(clock.Now(), node, others);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].kind, LeaseDecision::kAskHead);
  EXPECT_EQ(asked[0].handle, 1u);
  EXPECT_EQ(queue.size(), 1u);
  EXPECT_TRUE(queue.Schedule(clock.Now(), node, others).empty());
  queue.HeadAnswered(1);  // no node fits there either
  EXPECT_TRUE(queue.Schedule(clock.Now(), node, others).empty());
  EXPECT_EQ(queue.InfeasibleDemands().size(), 1u);
  clock.Advance(absl::Seconds(2));
  EXPECT_TRUE(queue.Schedule(clock.Now(), node, others).empty());
  clock.Advance(absl::Seconds(1));
  auto d = queue.Schedule(clock.Now(), node, others);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, LeaseDecision::kInfeasible);
  EXPECT_NE(d[0].message.find("unicorn"), std::string::npos);
}

TEST_F(LeaseQueueTest, ARequestTheHeadSaysToWaitForOutlivesTheGrace) {
  std::string bundle = BundleResource(kCpu, std::string(32, 'c'), 0);
  queue.Add(1, R({{bundle, 1}}), true, clock.Now());
  ASSERT_EQ(queue.Schedule(clock.Now(), node, others).size(), 1u);  // asks
  // Its group is being placed again: past the grace, it still waits, and
  // is no infeasible demand meanwhile.
  queue.WaitForHead(1, clock.Now() + absl::Seconds(5));
  clock.Advance(absl::Seconds(4));
  EXPECT_TRUE(queue.Schedule(clock.Now(), node, others).empty());
  EXPECT_TRUE(queue.InfeasibleDemands().empty());
  // Its bundle appears here: granted at once.
  node.AddCapacity(R({{bundle, 1}}));
  auto d = queue.Schedule(clock.Now(), node, others);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, LeaseDecision::kGrant);
  // Told to wait and never placed: it asks again when the wait is over.
  queue.Add(2, R({{BundleResource(kCpu, std::string(32, 'd'), 0), 1}}), true,
            clock.Now());
  ASSERT_EQ(queue.Schedule(clock.Now(), node, others).size(), 1u);
  queue.WaitForHead(2, clock.Now() + absl::Seconds(1));
  clock.Advance(absl::Seconds(1));
  auto again = queue.Schedule(clock.Now(), node, others);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].kind, LeaseDecision::kAskHead);
  // A spilled request asks as well, when a bundle is what it lacks.
  queue.Add(3, R({{BundleResource(kCpu, std::string(32, 'a'), 0), 1}}),
            /*allow_spillback=*/false, clock.Now());
  auto spilled = queue.Schedule(clock.Now(), node, others);
  ASSERT_EQ(spilled.size(), 1u);
  EXPECT_EQ(spilled[0].handle, 3u);
  EXPECT_EQ(spilled[0].kind, LeaseDecision::kAskHead);
}

TEST(ResourceSet, BundleResourcesNameTheirGroup) {
  std::string hex(32, 'e');
  EXPECT_EQ(BundleGroupHex(BundleResource(kCpu, hex, 3)), hex);
  EXPECT_EQ(BundleGroupHex(BundleResource("GPU", hex, -1)), hex);
  EXPECT_EQ(BundleGroupHex(kCpu), "");
  EXPECT_EQ(BundleGroupHex("accel_group_"), "");
}

TEST_F(LeaseQueueTest, ASpilledRequestNeverAsksTheHead) {
  queue.Add(1, R({{"unicorn", 1}}), /*allow_spillback=*/false, clock.Now());
  EXPECT_TRUE(queue.Schedule(clock.Now(), node, others).empty());
  clock.Advance(absl::Seconds(4));
  auto d = queue.Schedule(clock.Now(), node, others);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, LeaseDecision::kInfeasible);
}

TEST_F(LeaseQueueTest, ANodeThatJoinsInTheGracePeriodTakesTheDemand) {
  queue.Add(1, R({{"unicorn", 1}}), true, clock.Now());
  EXPECT_EQ(queue.Schedule(clock.Now(), node, others).size(), 1u);  // asks
  queue.HeadAnswered(1);
  clock.Advance(absl::Seconds(2));
  others.push_back(
      RemoteNode{"n3", "h", 9, R({{"unicorn", 1}}), R({{"unicorn", 1}})});
  auto d = queue.Schedule(clock.Now(), node, others);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, LeaseDecision::kSpillback);
}

// Strategies over four nodes: this one ("n1") and three others.
class StrategyTest : public LeaseQueueTest {
 protected:
  void SetUp() override {
    for (const char* id : {"n2", "n3", "n4"}) {
      others.push_back(RemoteNode{
          id, "h", 1, R({{"CPU", 2}}), R({{"CPU", 2}}), {{"zone", "b"}}});
    }
    others[2].labels["zone"] = "c";
  }
  // Where each of n requests submitted together goes ("n1": here).
  std::vector<std::string> PlaceAll(int n, const Strategy& s) {
    for (int i = 0; i < n; ++i) {
      queue.Add(i, R({{"CPU", 1}}), true, clock.Now(), s);
    }
    std::vector<std::string> out;
    for (const auto& d : queue.Schedule(clock.Now(), node, others, self)) {
      out.push_back(d.kind == LeaseDecision::kGrant ? "n1"
                    : d.target                      ? d.target->node_id
                                                    : "infeasible");
    }
    return out;
  }
  LocalNode self{"n1", {{"zone", "a"}}};
};

TEST_F(StrategyTest, DefaultPacksHereToHalfThenTheLeastUtilized) {
  // n1 takes one (then it is half used); the idle nodes take one each
  // (spilled requests count against them at once); all half used, n1 again.
  auto where = PlaceAll(5, Strategy{});
  EXPECT_EQ(where, (std::vector<std::string>{"n1", "n2", "n3", "n4", "n1"}));
}

TEST_F(StrategyTest, SpreadTakesEachNodeInTurn) {
  Strategy spread{Strategy::kSpread};
  auto where = PlaceAll(4, spread);
  EXPECT_EQ(where, (std::vector<std::string>{"n1", "n2", "n3", "n4"}));
}

TEST_F(StrategyTest, HardAffinityGoesToItsNodeEvenWhenBusy) {
  others[1].available = R({{"CPU", 0}});
  Strategy hard{Strategy::kNodeAffinity, "n3", false};
  EXPECT_EQ(PlaceAll(1, hard), (std::vector<std::string>{"n3"}));
  Strategy gone{Strategy::kNodeAffinity, "n9", false};
  queue.Add(7, R({{"CPU", 1}}), true, clock.Now(), gone);
  auto asked = queue.Schedule(clock.Now(), node, others, self);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].kind, LeaseDecision::kAskHead);
  queue.HeadAnswered(7);
  clock.Advance(absl::Seconds(4));
  auto d = queue.Schedule(clock.Now(), node, others, self);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, LeaseDecision::kInfeasible);
  EXPECT_NE(d[0].message.find("on node"), std::string::npos);
}

TEST_F(StrategyTest, SoftAffinityFallsBackWhenItsNodeIsFull) {
  others[1].available = R({{"CPU", 0}});
  Strategy soft{Strategy::kNodeAffinity, "n3", true};
  EXPECT_EQ(PlaceAll(1, soft), (std::vector<std::string>{"n1"}));
  Strategy free{Strategy::kNodeAffinity, "n2", true};
  queue.Add(9, R({{"CPU", 1}}), true, clock.Now(), free);
  auto d = queue.Schedule(clock.Now(), node, others, self);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].target->node_id, "n2");
}

TEST_F(StrategyTest, ASoftAffinitysUnknownNodeIsTheHeadsToFind) {
  // n9 joined after this view was taken: the head is asked and the request
  // waits for its answer; told nothing better, it is placed as by default.
  Strategy data{Strategy::kNodeAffinity, "n9", true};
  data.locality = true;
  queue.Add(1, R({{"CPU", 1}}), true, clock.Now(), data);
  auto d = queue.Schedule(clock.Now(), node, others, self);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, LeaseDecision::kAskHead);
  EXPECT_TRUE(queue.Schedule(clock.Now(), node, others, self).empty());
  queue.HeadAnswered(1);
  d = queue.Schedule(clock.Now(), node, others, self);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, LeaseDecision::kGrant);
}

TEST_F(StrategyTest, TheDatasNodeDecidesWhenItLooksBusy) {
  others[1].available = R({{"CPU", 0}});  // n3, as this view last saw it
  Strategy data{Strategy::kNodeAffinity, "n3", true};
  data.locality = true;
  queue.Add(1, R({{"CPU", 1}}), true, clock.Now(), data);
  auto d = queue.Schedule(clock.Now(), node, others, self);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, LeaseDecision::kSpillback);
  EXPECT_EQ(d[0].target->node_id, "n3");
  EXPECT_TRUE(d[0].may_spill);
  // Free in the view: plainly spilled there, as any soft affinity.
  others[1].available = R({{"CPU", 2}});
  queue.Add(2, R({{"CPU", 1}}), true, clock.Now(), data);
  d = queue.Schedule(clock.Now(), node, others, self);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_FALSE(d[0].may_spill);
  // A node that could never run it is passed over, as before.
  queue.Add(3, R({{"CPU", 4}}), true, clock.Now(), data);
  d = queue.Schedule(clock.Now(), node, others, self);
  EXPECT_TRUE(d.empty() || d[0].target == nullptr ||
              d[0].target->node_id != "n3");
}

TEST_F(StrategyTest, LabelSelectorKeepsToMatchingNodes) {
  Strategy zone_c;
  zone_c.labels = {{"zone", "c"}};
  EXPECT_EQ(PlaceAll(1, zone_c), (std::vector<std::string>{"n4"}));
  Strategy spread_b{Strategy::kSpread};
  spread_b.labels = {{"zone", "b"}};
  EXPECT_EQ(PlaceAll(3, spread_b),
            (std::vector<std::string>{"n2", "n3", "n2"}));
  Strategy nowhere;
  nowhere.labels = {{"zone", "z"}};
  queue.Add(5, R({{"CPU", 1}}), true, clock.Now(), nowhere);
  clock.Advance(absl::Seconds(4));
  queue.Schedule(clock.Now(), node, others, self);  // starts the grace
  queue.HeadAnswered(5);
  clock.Advance(absl::Seconds(4));
  auto d = queue.Schedule(clock.Now(), node, others, self);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, LeaseDecision::kInfeasible);
  EXPECT_NE(d[0].message.find("zone=z"), std::string::npos) << d[0].message;
}

TEST(ClusterScheduler, PicksByStrategyLoadAndLocality) {
  auto node = [](const std::string& id, double cpus, double free,
                 const std::string& zone) {
    return NodeState{
        id, R({{"CPU", cpus}}), R({{"CPU", free}}), {{"zone", zone}}};
  };
  std::vector<NodeState> nodes = {node("a", 4, 1, "x"), node("b", 4, 3, "x"),
                                  node("c", 4, 2, "y"), node("d", 4, 0, "y")};
  ClusterScheduler s;
  ResourceSet one = R({{"CPU", 1}});
  EXPECT_EQ(s.Pick(nodes, one, {}), 1);       // the least utilized
  EXPECT_EQ(s.Pick(nodes, one, {}, "c"), 2);  // where its data is
  Strategy zone_y;
  zone_y.labels = {{"zone", "y"}};
  EXPECT_EQ(s.Pick(nodes, one, zone_y), 2);  // d is full
  Strategy hard{Strategy::kNodeAffinity, "d", false};
  EXPECT_EQ(s.Pick(nodes, one, hard), -1);
  EXPECT_TRUE(ClusterScheduler::Feasible(nodes, one, hard));
  Strategy soft{Strategy::kNodeAffinity, "d", true};
  EXPECT_EQ(s.Pick(nodes, one, soft), 1);
  Strategy spread{Strategy::kSpread};
  std::set<int> seen;
  for (int i = 0; i < 3; ++i) seen.insert(s.Pick(nodes, one, spread));
  EXPECT_EQ(seen, (std::set<int>{0, 1, 2}));
  EXPECT_EQ(s.Pick(nodes, R({{"CPU", 5}}), {}), -1);
  EXPECT_FALSE(ClusterScheduler::Feasible(nodes, R({{"CPU", 5}}), {}));
}

}  // namespace
}  // namespace loom
