// Cluster tests: lineage reconstruction. Objects whose every copy died
// with a node come back by re-running the tasks that made them, or fail
// with ObjectLostError saying why (docs/architecture.md).
#include <signal.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "loom/loom.h"
#include "tests/cluster/cluster_util.h"
#include "tests/cluster/test_cluster.h"
#include "tests/cluster/test_functions.h"

namespace loom::test {
namespace {

// How many times each Layer ran: lines "n" in `path`.
std::map<int, int> Runs(const std::string& path) {
  std::map<int, int> runs;
  std::ifstream in(path);
  for (int n; in >> n;) runs[n]++;
  return runs;
}

// A chain of three Layer tasks on `node`'s "pool", each in a store there;
// returns the last once all three are done (none read elsewhere).
ObjectRef<std::string> Chain(const std::string& path) {
  auto a = Task(Layer).SetResource("pool", 1).Remote(path, std::string(), 0);
  auto b = Task(Layer).SetResource("pool", 1).Remote(path, a, 1);
  auto c = Task(Layer).SetResource("pool", 1).Remote(path, b, 2);
  auto [ready, unready] = loom::Wait(std::vector{c}, 1, 60000);
  EXPECT_EQ(ready.size(), 1u);
  return c;
}

// Kills `node`'s raylet (its workers follow) and waits until the head
// declares it dead.
void KillNode(Cluster& cluster, Cluster::Node* node) {
  auto before = ClusterStatus(cluster.address());
  ASSERT_TRUE(before.ok()) << before.status();
  int alive = CountNodes(*before, true);
  ASSERT_EQ(kill(node->raylet_pid(), SIGKILL), 0);
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto s = ClusterStatus(cluster.address());
        return s.ok() && CountNodes(*s, true) == alive - 1;
      },
      absl::Seconds(20)));
}

std::string Expected() {
  std::string s;
  for (int n = 0; n < 3; ++n) s += std::string(128 << 10, 'a' + n);
  return s;
}

TEST(Lineage, AChainWhoseNodeDiedIsRebuiltOnAnother) {
  Cluster cluster({.node_timeout_ms = 1000});
  ASSERT_TRUE(cluster.status().ok()) << cluster.status();
  Cluster::Node* doomed = cluster.AddNode({.resources = {{"pool", 1}}});
  ASSERT_NE(doomed, nullptr);
  cluster.Connect();
  std::string path = cluster.head().root() + "/lineage-runs";
  ObjectRef<std::string> c = Chain(path);
  EXPECT_EQ((Runs(path)), (std::map<int, int>{{0, 1}, {1, 1}, {2, 1}}));
  ASSERT_NE(cluster.AddNode({.resources = {{"pool", 1}}}), nullptr);
  KillNode(cluster, doomed);
  // Every copy of the three died: all three run again, in order.
  EXPECT_EQ(*Get(c, 60000), Expected());
  EXPECT_EQ((Runs(path)), (std::map<int, int>{{0, 2}, {1, 2}, {2, 2}}));
}

TEST(Lineage, AnObjectWhoseLineageWasEvictedSaysSo) {
  Cluster cluster({.node_timeout_ms = 1000});
  ASSERT_TRUE(cluster.status().ok()) << cluster.status();
  Cluster::Node* doomed = cluster.AddNode({.resources = {{"pool", 1}}});
  ASSERT_NE(doomed, nullptr);
  setenv("LOOM_MAX_LINEAGE_BYTES", "0", 1);  // this driver keeps none
  cluster.Connect();
  unsetenv("LOOM_MAX_LINEAGE_BYTES");
  ObjectRef<std::string> c = Chain(cluster.head().root() + "/runs");
  ASSERT_NE(cluster.AddNode({.resources = {{"pool", 1}}}), nullptr);
  KillNode(cluster, doomed);
  try {
    Get(c, 60000);
    FAIL() << "expected ObjectLostError";
  } catch (const ObjectLostError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("died"), std::string::npos) << what;
    EXPECT_NE(what.find("evicted"), std::string::npos) << what;
    EXPECT_NE(what.find(doomed->id_hex().substr(0, 12)), std::string::npos)
        << what;
  }
}

TEST(Lineage, AnActorTasksLostResultSaysItCannotBeRebuilt) {
  Cluster cluster({.node_timeout_ms = 1000});
  ASSERT_TRUE(cluster.status().ok()) << cluster.status();
  Cluster::Node* doomed = cluster.AddNode({.resources = {{"pool", 1}}});
  ASSERT_NE(doomed, nullptr);
  cluster.Connect();
  auto counter = Actor(MakeCounter).SetResource("pool", 1).Remote(0);
  auto bytes = counter.Task(&Counter::Bytes).Remote(int64_t{256} << 10);
  auto [ready, unready] = loom::Wait(std::vector{bytes}, 1, 60000);
  ASSERT_EQ(ready.size(), 1u);
  KillNode(cluster, doomed);
  try {
    Get(bytes, 60000);
    FAIL() << "expected ObjectLostError";
  } catch (const ObjectLostError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(doomed->id_hex().substr(0, 12) + ", which held its "
                                                         "only copy, died"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("actor task's result"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace loom::test
