// GPU tests (ctest label "gpu"): NVML discovery, and workers that see only
// the GPUs their lease holds, checked through the CUDA driver. Each skips
// when this machine has no NVIDIA GPU and driver.
#include <cstdlib>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "loom/loom.h"
#include "src/raylet/gpus.h"
#include "tests/cluster/cluster_util.h"
#include "tests/cluster/private_cluster.h"
#include "tests/cluster/test_functions.h"

namespace loom::test {
namespace {

std::vector<raylet::GpuInfo> Gpus(std::string* why) {
  return raylet::DiscoverGpus(why);
}

TEST(GpuDiscovery, NvmlFindsTheGpusAndTheirMemory) {
  std::string why;
  auto gpus = Gpus(&why);
  if (gpus.empty()) GTEST_SKIP() << "no GPU here: " << why;
  for (const auto& g : gpus) {
    EXPECT_FALSE(g.name.empty());
    EXPECT_GT(g.memory_bytes, uint64_t{1} << 30) << g.name;
  }
  auto labels = raylet::GpuLabels(gpus);
  EXPECT_FALSE(labels["accelerator_type"].empty());
  EXPECT_EQ(labels["gpu_memory"], std::to_string(gpus[0].memory_bytes));
}

class GpuClusterTest : public PrivateClusterTest {};

TEST_F(GpuClusterTest, NodeOffersItsGpusAndTasksSeeOnlyTheirs) {
  std::string why;
  auto gpus = Gpus(&why);
  if (gpus.empty()) GTEST_SKIP() << "no GPU here: " << why;
  StartCluster(2);  // num_gpus unset: the raylet asks NVML
  std::ifstream address_file(SessionDir() + "/address");
  std::string address;
  std::getline(address_file, address);
  auto status = ClusterStatus(address);
  ASSERT_TRUE(status.ok()) << status.status();
  const rpc::NodeInfo& node = status->nodes(0);
  EXPECT_EQ(node.total().quantities().at("GPU"),
            static_cast<double>(gpus.size()));
  EXPECT_EQ(node.labels().at("gpu_model"), gpus[0].name);
  EXPECT_GT(node.total().quantities().at("gpu_memory"), 1e9);

  // A task holding one GPU sees exactly one device through CUDA...
  auto one = loom::Task(CudaDeviceCount).SetResource("GPU", 1).Remote();
  EXPECT_EQ(*loom::Get(one), 1);
  // ...and a CPU-only task sees none.
  auto none = loom::Task(CudaDeviceCount).Remote();
  EXPECT_EQ(*loom::Get(none), 0);
  // An actor holding GPU 0 is told so and sees it alone.
  auto actor = loom::Actor(MakeCounter).SetResource("GPU", 1).Remote(0);
  EXPECT_EQ(*loom::Get(actor.Task(&Counter::Gpus).Remote()), "0|0");
}

TEST_F(GpuClusterTest, ABundlesGpuIsItsTasksGpu) {
  std::string why;
  if (Gpus(&why).empty()) GTEST_SKIP() << "no GPU here: " << why;
  StartCluster(2);
  auto pg = CreatePlacementGroup({{{"CPU", 1}, {"GPU", 1}}});
  ASSERT_TRUE(pg.Wait(30000));
  auto in_bundle = loom::Task(CudaDeviceCount)
                       .SetResource("GPU", 1)
                       .SetPlacementGroup(pg, 0)
                       .Remote();
  EXPECT_EQ(*loom::Get(in_bundle), 1);
  RemovePlacementGroup(pg);
}

}  // namespace
}  // namespace loom::test
