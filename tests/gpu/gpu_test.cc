// GPU tests (ctest label "gpu"): NVML discovery, workers that see only the
// GPUs their lease holds (checked through the CUDA driver), CudaBuffers
// moving between actors through CUDA IPC, and NCCL groups among actors.
// Each skips when this machine has no NVIDIA GPU and driver.
#include <cstdlib>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "loom/loom.h"
#include "runtime/gpu/nccl_api.h"
#include "runtime/internal_kv.h"
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

TEST(CudaBufferTest, ReceivedInItsOwnProcessItIsTheSameMemory) {
  std::string why;
  if (Gpus(&why).empty()) GTEST_SKIP() << "no GPU here: " << why;
  std::string bytes = Pattern(1 << 16);
  auto buffer = loom::CudaBuffer::Allocate(bytes.size());
  buffer.CopyFromHost(bytes.data(), bytes.size());
  EXPECT_TRUE(buffer.is_owner());
  EXPECT_FALSE(buffer.pci_bus_id().empty());
  auto copy = loom::Deserialize<loom::CudaBuffer>(loom::Serialize(buffer));
  EXPECT_EQ(copy.data(), buffer.data());
  EXPECT_EQ(copy.size(), bytes.size());
  std::vector<uint8_t> back = copy.ToHost();
  EXPECT_EQ(std::string(back.begin(), back.end()), bytes);
}

TEST_F(GpuClusterTest, ACudaBufferMovesBetweenActorsSharingAGpu) {
  std::string why;
  if (Gpus(&why).empty()) GTEST_SKIP() << "no GPU here: " << why;
  StartCluster(4);
  // Both take half a GPU: they share GPU 0, in two processes.
  auto a = loom::Actor(MakeGpuWorker).SetResource("GPU", 0.5).Remote();
  auto b = loom::Actor(MakeGpuWorker).SetResource("GPU", 0.5).Remote();
  ASSERT_NE(*loom::Get(a.Task(&GpuWorker::Pid).Remote()),
            *loom::Get(b.Task(&GpuWorker::Pid).Remote()));
  constexpr int64_t kBytes = 4 << 20;
  auto shared = a.Task(&GpuWorker::Share).Remote(kBytes);

  // B maps A's memory (the ref resolves in B, not here) and reads it.
  std::string read = *loom::Get(b.Task(&GpuWorker::Read).Remote(shared));
  ASSERT_EQ(read.size(), static_cast<size_t>(kBytes));
  EXPECT_TRUE(IsPattern(read));

  // B writes into it; A sees the write in the memory it kept.
  const std::string note = "written by B";
  EXPECT_TRUE(*loom::Get(b.Task(&GpuWorker::Write).Remote(shared, note)));
  std::string kept = *loom::Get(a.Task(&GpuWorker::ReadKept).Remote());
  ASSERT_EQ(kept.size(), static_cast<size_t>(kBytes));
  EXPECT_EQ(kept.substr(0, note.size()), note);
  EXPECT_EQ(kept.substr(note.size()), Pattern(kBytes).substr(note.size()));

  // The driver can hold and pass the buffer on without mapping it; a
  // received copy in A itself is A's own memory.
  loom::CudaBuffer passed = *loom::Get(shared);
  EXPECT_EQ(passed.size(), static_cast<size_t>(kBytes));
  EXPECT_FALSE(passed.is_owner());
  EXPECT_EQ(*loom::Get(b.Task(&GpuWorker::Read).Remote(passed)), kept);
  EXPECT_FALSE(*loom::Get(a.Task(&GpuWorker::Write).Remote(passed, "A")));
}

// Forms an NCCL group of `world` actors, one GPU each (this cluster must
// have started with world + 1 CPUs), runs every collective in each rank and
// expects each result; then leaves the group.
void RunNcclGroup(int world, const std::string& group) {
  std::vector<loom::ActorHandle<GpuWorker>> actors;
  for (int r = 0; r < world; ++r) {
    actors.push_back(loom::Actor(MakeGpuWorker).SetResource("GPU", 1).Remote());
  }
  std::vector<loom::ObjectRef<int>> joined;
  for (int r = 0; r < world; ++r) {  // all at once: InitGroup waits for all
    joined.push_back(actors[r].Task(&GpuWorker::Join).Remote(world, r, group));
  }
  for (int r = 0; r < world; ++r) EXPECT_EQ(*loom::Get(joined[r]), r);

  // Rank 0 published the unique id in the head's KV.
  auto id = internal_kv::Get("fn", "collective:nccl:" + group);
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(id->has_value());
  EXPECT_EQ((*id)->size(), 128u);

  std::vector<loom::ObjectRef<std::string>> runs;
  for (auto& a : actors) {
    runs.push_back(a.Task(&GpuWorker::RunCollectives).Remote(group));
  }
  for (int r = 0; r < world; ++r) {
    EXPECT_EQ(*loom::Get(runs[r]), "ok") << "rank " << r << " of " << world;
  }

  std::vector<loom::ObjectRef<bool>> left;
  for (auto& a : actors)
    left.push_back(a.Task(&GpuWorker::Leave).Remote(group));
  for (auto& l : left) EXPECT_TRUE(*loom::Get(l));
  id = internal_kv::Get("fn", "collective:nccl:" + group);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_FALSE(id->has_value()) << "rank 0 deletes the unique id";
}

// Why NCCL cannot run here ("" when it can).
std::string NoNccl(const std::vector<raylet::GpuInfo>& gpus,
                   const std::string& why) {
  if (gpus.empty()) return "no GPU here: " + why;
  if (auto nccl = gpu::Nccl(); !nccl.ok()) {
    return std::string(nccl.status().message());
  }
  return "";
}

// One rank: every collective runs, and those that write an output other
// than their input (out of place) must fill it.
TEST_F(GpuClusterTest, AnNcclGroupOfOneRunsEveryCollective) {
  std::string why;
  auto gpus = Gpus(&why);
  if (std::string no = NoNccl(gpus, why); !no.empty()) GTEST_SKIP() << no;
  StartCluster(2);
  RunNcclGroup(1, "gpu_test_group_of_one");
}

// Every GPU a rank (NCCL needs a GPU per rank): reductions add, gather and
// broadcast across ranks, so in-place collectives that do nothing fail too.
TEST_F(GpuClusterTest, AnNcclGroupAcrossGpusCombinesEveryRank) {
  std::string why;
  auto gpus = Gpus(&why);
  if (std::string no = NoNccl(gpus, why); !no.empty()) GTEST_SKIP() << no;
  if (gpus.size() < 2) {
    GTEST_SKIP() << "needs 2 GPUs, found " << gpus.size()
                 << ": reductions across ranks are checked only with one "
                    "GPU per rank";
  }
  const int world = static_cast<int>(gpus.size());
  StartCluster(world + 1);
  RunNcclGroup(world, "gpu_test_group");
}

}  // namespace
}  // namespace loom::test
