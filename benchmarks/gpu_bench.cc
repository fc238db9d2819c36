// loom-gpu-bench: NCCL allreduce bandwidth among actors, one per GPU, one
// JSON line per size on stdout ({"name": "allreduce_nccl_<N>MiB_gigabytes",
// "value": GB/s, "unit": "GB/s", "world_size": N}). The value is the
// algorithm bandwidth (bytes / time of one out-of-place float32 allreduce,
// each call synchronized), median of 3 runs; the slowest rank's time counts.
// Without a GPU, the CUDA runtime or NCCL it prints one line saying why
// ({"name": "allreduce_nccl", "skipped": ...}) and exits 0.
//
//   build/bin/loom-gpu-bench
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "benchmarks/bench_cluster.h"
#include "benchmarks/bench_functions.h"
#include "loom/loom.h"
#include "runtime/gpu/cuda_api.h"
#include "runtime/gpu/nccl_api.h"

namespace {

struct Size {
  int64_t mib;
  int iters;
};
constexpr Size kSizes[] = {{1, 200}, {16, 50}, {256, 10}};
constexpr int kRuns = 3;

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    out += c;
  }
  return out + "\"";
}

// The GPUs this process sees; 0 and *why when CUDA or NCCL is missing.
int UsableGpus(std::string* why) {
  auto nccl = loom::gpu::Nccl();
  if (!nccl.ok()) {
    *why = std::string(nccl.status().message());
    return 0;
  }
  auto cuda = loom::gpu::Cuda();
  if (!cuda.ok()) {
    *why = std::string(cuda.status().message());
    return 0;
  }
  int n = 0;
  absl::Status s =
      loom::gpu::CudaCheck((*cuda)->GetDeviceCount(&n), "cudaGetDeviceCount");
  if (!s.ok()) *why = std::string(s.message());
  if (s.ok() && n == 0) *why = "no GPU visible";
  return s.ok() ? n : 0;
}

}  // namespace

int main() {
  std::string why;
  const int world = UsableGpus(&why);
  if (world == 0) {
    std::printf("{\"name\": \"allreduce_nccl\", \"skipped\": %s}\n",
                JsonString("no GPU: " + why).c_str());
    return 0;
  }
  try {
    loom::bench::PrivateCluster cluster(world + 1);
    std::vector<loom::ActorHandle<GpuBenchActor>> actors;
    for (int r = 0; r < world; ++r) {
      actors.push_back(
          loom::Actor(MakeGpuBenchActor).SetResource("GPU", 1).Remote());
    }
    const std::string group = "loom_gpu_bench";
    std::vector<loom::ObjectRef<int>> joined;
    for (int r = 0; r < world; ++r) {
      joined.push_back(
          actors[r].Task(&GpuBenchActor::Join).Remote(world, r, group));
    }
    loom::Get(joined);
    for (const Size& size : kSizes) {
      const int64_t bytes = size.mib << 20;
      std::vector<double> rates;
      for (int run = 0; run < kRuns; ++run) {
        std::vector<loom::ObjectRef<double>> secs;
        for (auto& a : actors) {
          secs.push_back(a.Task(&GpuBenchActor::AllReduceSeconds)
                             .Remote(bytes, size.iters, group));
        }
        double slowest = 0;
        for (auto& s : loom::Get(secs)) slowest = std::max(slowest, *s);
        rates.push_back(static_cast<double>(bytes) * size.iters / slowest /
                        1e9);
      }
      std::sort(rates.begin(), rates.end());
      // One rank: NCCL copies send to recv; nothing crosses a link.
      std::printf(
          "{\"name\": \"allreduce_nccl_%lldMiB_gigabytes\", \"value\": %.3f, "
          "\"unit\": \"GB/s\", \"world_size\": %d%s}\n",
          static_cast<long long>(size.mib), rates[kRuns / 2], world,
          world == 1 ? ", \"note\": \"one GPU: a local copy\"" : "");
      std::fflush(stdout);
    }
    std::vector<loom::ObjectRef<bool>> left;
    for (auto& a : actors) {
      left.push_back(a.Task(&GpuBenchActor::Leave).Remote(group));
    }
    loom::Get(left);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loom-gpu-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
