// Cluster tests: each raylet serves its node's object store on
// <session>/sockets/store.
#include <cstring>

#include "gtest/gtest.h"
#include "object_store/store_client.h"
#include "runtime/local_cluster.h"
#include "src/common/session.h"
#include "tests/cluster/cluster_util.h"

namespace loom::test {
namespace {

TEST(ObjectStore, TheRayletServesItsNodesStore) {
  TempRoot root;
  ClusterOptions options;
  options.session_root = root.path();
  options.num_cpus = 1;
  options.object_store_memory = 64 << 20;
  auto cluster = StartCluster(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  std::string socket = cluster->session_dir + "/sockets/store";
  auto writer = ObjectStoreClient::Connect(socket);
  auto reader = ObjectStoreClient::Connect(socket);
  ASSERT_TRUE(writer.ok() && reader.ok());
  EXPECT_EQ((*writer)->arena().size(), uint64_t{64} << 20);

  (*writer)->set_owner("test writer");
  ObjectId id = ObjectId::ForPut(TaskId::FromRandom(), 1);
  auto dst = (*writer)->Create(id, 1 << 20, 0);
  ASSERT_TRUE(dst.ok()) << dst.status();
  std::memset(*dst, 7, 1 << 20);
  ASSERT_TRUE((*writer)->Seal(id).ok());
  auto views = (*reader)->Get({id}, 5000);
  ASSERT_TRUE(views.ok());
  ASSERT_TRUE((*views)[0].has_value());
  EXPECT_TRUE((*reader)->arena().Contains((*views)[0]->data, 1 << 20));
  EXPECT_EQ((*views)[0]->data[12345], 7);
  EXPECT_TRUE(WaitUntil(
      [&] {
        return RayletMetric(cluster->session_dir,
                            "loom_object_store_used_bytes") == (1 << 20);
      },
      absl::Seconds(3)));
  // `loom memory` shows the node's use and its largest objects with owners.
  auto memory =
      RunCommand(BinDir() + "/loom memory --address " + cluster->gcs_address +
                 " --session-root " + root.path());
  EXPECT_EQ(memory.exit_code, 0) << memory.output;
  EXPECT_NE(
      memory.output.find("1.0 MiB used of 64.0 MiB, 1 objects (1 pinned)"),
      std::string::npos)
      << memory.output;
  EXPECT_NE(memory.output.find(id.Hex()), std::string::npos) << memory.output;
  EXPECT_NE(memory.output.find("test writer"), std::string::npos)
      << memory.output;
  // Too big for the store: refused with the sizes named.
  auto too_big = (*writer)->Create(ObjectId::ForPut(TaskId::FromRandom(), 1),
                                   128 << 20, 0);
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kResourceExhausted);
  StopCluster(*cluster);
}

}  // namespace
}  // namespace loom::test
