// PlacementGroupManager against fake raylets served in-process through a
// FakeClientPool: the two phases, and a refused prepare that releases what
// the other node reserved and tries again.
#include "src/gcs/placement_groups.h"

#include <gtest/gtest.h>

#include "scheduler/resource_set.h"
#include "src/gcs/storage.h"
#include "tests/unit/fake_client_pool.h"
#include "tests/unit/fake_peers.h"

namespace loom::gcs {
namespace {

class PlacementGroupsTest : public ::testing::Test {
 protected:
  PlacementGroupsTest()
      : loop_("pg-test"),
        publisher_(&loop_),
        nodes_({&store_, &publisher_, Clock::Real(), absl::Seconds(5), {}}),
        scheduler_(&nodes_),
        actors_(&loop_, &nodes_, &publisher_, &scheduler_, &pool_, &store_),
        groups_(&loop_, &nodes_, &actors_, &pool_, &store_) {
    // Node ids sort "a..." before "b...": bundle 0 lands on a, 1 on b.
    AddNode(std::string(16, 'a'), 7001, &a_);
    AddNode(std::string(16, 'b'), 7002, &b_);
    loop_.Start();
  }
  ~PlacementGroupsTest() override {
    groups_.Shutdown();
    actors_.Shutdown();
    loop_.Stop();
  }

  void AddNode(const std::string& id, int port, FakeRaylet* raylet) {
    pool_.Serve("10.0.0.1:" + std::to_string(port), raylet);
    rpc::NodeInfo node;
    node.set_node_id(id);
    node.set_host("10.0.0.1");
    node.set_raylet_port(port);
    (*node.mutable_total()->mutable_quantities())["CPU"] = 2;
    (*node.mutable_available()->mutable_quantities())["CPU"] = 2;
    EXPECT_TRUE(nodes_.Register(node).ok());
  }

  std::string Create() {
    rpc::CreatePlacementGroupRequest req;
    req.mutable_group()->set_strategy(rpc::PlacementGroupInfo::STRICT_SPREAD);
    for (int i = 0; i < 2; ++i) {
      (*req.mutable_group()->add_bundles()->mutable_quantities())["CPU"] = 1;
    }
    std::string id;
    loop_.RunSync([&] {
      rpc::CreatePlacementGroupReply reply;
      groups_.HandleCreate(req, &reply, [&](absl::Status s) {
        EXPECT_TRUE(s.ok()) << s;
        id = reply.pg_id();
      });
    });
    return id;
  }

  rpc::PlacementGroupInfo Info(const std::string& id) {
    rpc::PlacementGroupInfo info;
    loop_.RunSync([&] {
      rpc::ListPlacementGroupsReply reply;
      groups_.HandleList({}, &reply, [](absl::Status) {});
      for (const auto& g : reply.groups()) {
        if (g.pg_id() == id) info = g;
      }
    });
    return info;
  }

  bool WaitCreated(const std::string& id) {
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      if (Info(id).state() == rpc::PlacementGroupInfo::CREATED) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }

  FakeRaylet a_;
  FakeRaylet b_{/*refuse_prepares=*/1};
  FakeClientPool pool_;
  EventLoop loop_;
  InMemoryStoreClient store_;
  Publisher publisher_;
  NodeTable nodes_;
  GlobalScheduler scheduler_;
  ActorManager actors_;
  PlacementGroupManager groups_;
};

TEST_F(PlacementGroupsTest, ARefusedPrepareReleasesTheOtherNodeAndRetries) {
  std::string id = Create();
  ASSERT_TRUE(WaitCreated(id)) << Info(id).DebugString();
  // b refused its first prepare: a's reservation went back before the
  // group tried again, and each node committed only once.
  EXPECT_EQ(a_.bundle_calls(),
            (std::vector<std::string>{"prepare 0", "release 0", "prepare 0",
                                      "commit 0"}));
  EXPECT_EQ(b_.bundle_calls(),
            (std::vector<std::string>{"prepare 1", "release 1", "prepare 1",
                                      "commit 1"}));
  rpc::PlacementGroupInfo info = Info(id);
  ASSERT_EQ(info.bundle_nodes_size(), 2);
  EXPECT_EQ(info.bundle_nodes(0), std::string(16, 'a'));
  EXPECT_EQ(info.bundle_nodes(1), std::string(16, 'b'));
}

TEST_F(PlacementGroupsTest, ALeaseForABundleWaitsWhileItsGroupLives) {
  using Group = PlacementGroupManager::DemandGroup;
  std::string id = Create();
  std::string why;
  auto group_of = [&](const std::string& resource) {
    rpc::Resources demand;
    (*demand.mutable_quantities())[resource] = 1;
    Group g;
    loop_.RunSync([&] { g = groups_.GroupOf(demand, &why); });
    return g;
  };
  std::string hex = PlacementGroupId::FromBinary(id)->Hex();
  std::string bundle = BundleResource("CPU", hex, 1);
  // Being placed or placed: a request no node can run yet waits.
  EXPECT_EQ(group_of(bundle), Group::kLive);
  ASSERT_TRUE(WaitCreated(id));
  EXPECT_EQ(group_of(bundle), Group::kLive);
  // Not a group's, or not a group this head knows.
  EXPECT_EQ(group_of("CPU"), Group::kNone);
  EXPECT_EQ(group_of(BundleResource("CPU", std::string(32, 'f'), 0)),
            Group::kNone);
  // Removed: it never can run, and says why.
  loop_.RunSync([&] {
    rpc::RemovePlacementGroupRequest req;
    req.set_pg_id(id);
    rpc::RemovePlacementGroupReply reply;
    groups_.HandleRemove(req, &reply, [](absl::Status) {});
  });
  EXPECT_EQ(group_of(bundle), Group::kGone);
  EXPECT_EQ(why, "its placement group " + hex + " was removed");
}

}  // namespace
}  // namespace loom::gcs
