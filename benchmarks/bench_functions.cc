#include "benchmarks/bench_functions.h"

#include <chrono>
#include <vector>

#include "loom/loom.h"

int Noop(int x) { return x; }

int PutMany(int n) {
  static const std::vector<uint8_t> value(kStoreValueBytes, 7);
  for (int i = 0; i < n; ++i) {
    loom::ObjectRef<loom::Buffer> ref =
        loom::Put(loom::Buffer(value.data(), value.size(), nullptr));
  }
  return n;
}

BenchActor* MakeBenchActor() { return new BenchActor; }

LOOM_REMOTE(Noop, PutMany, MakeBenchActor, &BenchActor::Noop,
            &BenchActor::WithArg);

int GpuBenchActor::Join(int world, int rank, std::string group) {
  loom::collective::InitGroup(world, rank, "nccl", group);
  return loom::collective::GetRank(group);
}

double GpuBenchActor::AllReduceSeconds(int64_t bytes, int iters,
                                       std::string group) {
  namespace col = loom::collective;
  // Out of place, as nccl-tests measure it: with one rank it is a copy.
  auto send = loom::CudaBuffer::Allocate(bytes);
  auto recv = loom::CudaBuffer::Allocate(bytes);
  std::vector<uint8_t> zeros(bytes, 0);
  send.CopyFromHost(zeros.data(), zeros.size());
  const size_t count = bytes / sizeof(float);
  auto once = [&] {
    col::AllReduce(send.data(), recv.data(), count, col::DType::kFloat32,
                   col::ReduceOp::kSum, group);
  };
  once();
  once();
  col::Barrier(group);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) once();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

bool GpuBenchActor::Leave(std::string group) {
  loom::collective::DestroyGroup(group);
  return true;
}

GpuBenchActor* MakeGpuBenchActor() { return new GpuBenchActor; }

LOOM_REMOTE(MakeGpuBenchActor, &GpuBenchActor::Join,
            &GpuBenchActor::AllReduceSeconds, &GpuBenchActor::Leave);
