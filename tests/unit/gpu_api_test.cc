// The GPU API without a GPU: CudaBuffer and loom::collective fail with
// clear loom::Errors where CUDA, NCCL or the GPU is missing, and check
// their arguments first. (tests/gpu/ runs them on a GPU.)
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loom/loom.h"
#include "runtime/gpu/cuda_api.h"

namespace loom {
namespace {

using ::testing::HasSubstr;

// Whether the CUDA driver shows this process a device.
bool HasCudaDevice() {
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return false;
  auto init = reinterpret_cast<int (*)(unsigned)>(dlsym(lib, "cuInit"));
  auto count = reinterpret_cast<int (*)(int*)>(dlsym(lib, "cuDeviceGetCount"));
  int n = 0;
  return init && count && init(0) == 0 && count(&n) == 0 && n > 0;
}

// The message of the loom::Error that fn throws ("" when it throws none).
template <typename Fn>
std::string ErrorOf(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

CudaBuffer::Descriptor SomeDescriptor() {
  CudaBuffer::Descriptor d;
  d.ipc_handle = std::string(64, '\x01');
  d.size = 1024;
  d.pci_bus_id = "0000:FF:1F.0";
  d.pid = getpid() + 1;
  d.exporter_address = 0x7f0000000000;
  return d;
}

TEST(CudaBufferNoGpu, AllocateThrowsSayingCudaIsMissing) {
  if (HasCudaDevice()) GTEST_SKIP() << "this machine has a GPU";
  std::string error = ErrorOf([] { CudaBuffer::Allocate(1 << 20); });
  EXPECT_THAT(error, HasSubstr("CUDA")) << error;
}

TEST(CudaBufferNoGpu, AForcedMissingRuntimeIsNamed) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("LOOM_CUDART_LIB", "/nonexistent/libcudart.so", 1);
        std::cerr << ErrorOf([] { CudaBuffer::Allocate(16); });
        std::exit(0);
      },
      ::testing::ExitedWithCode(0),
      "CUDA runtime is not available: LOOM_CUDART_LIB=/nonexistent");
}

TEST(CudaBufferNoGpu, AnEmptyBufferTravelsAsEmpty) {
  CudaBuffer empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.data(), nullptr);
  auto back = Deserialize<CudaBuffer>(Serialize(empty));
  EXPECT_TRUE(back.empty());
  EXPECT_TRUE(CudaBuffer::Allocate(0).empty());
}

TEST(CudaBufferNoGpu, AReceiverOnAnotherMachineIsToldSo) {
  CudaBuffer::Descriptor d = SomeDescriptor();
  d.host = "some-other-machine/boot";
  auto received = Deserialize<CudaBuffer>(Serialize(d));  // not mapped yet
  EXPECT_EQ(received.size(), 1024u);
  EXPECT_FALSE(received.is_owner());
  std::string error = ErrorOf([&] { received.ToHost(); });
  EXPECT_THAT(error, HasSubstr("another machine")) << error;
  EXPECT_THAT(error, HasSubstr("some-other-machine")) << error;
  // Passing it on forwards the original handle.
  auto forwarded = Deserialize<CudaBuffer>(Serialize(received));
  EXPECT_EQ(forwarded.Export().host, d.host);
  EXPECT_EQ(forwarded.Export().ipc_handle, d.ipc_handle);
}

TEST(CudaBufferNoGpu, AReceiverThatCannotSeeTheGpuIsToldSo) {
  // This machine, but a GPU no process here has.
  CudaBuffer::Descriptor d = SomeDescriptor();
  d.host = gpu::MachineId();
  std::string error =
      ErrorOf([&] { Deserialize<CudaBuffer>(Serialize(d)).data(); });
  // Without a CUDA runtime that is what it says; with one, which GPU.
  if (error.find("CUDA runtime is not available") == std::string::npos) {
    EXPECT_THAT(error, HasSubstr("not visible")) << error;
    EXPECT_THAT(error, HasSubstr("0000:FF:1F.0")) << error;
  }
}

TEST(CudaBufferNoGpu, TheAllocatingProcessNeedsToStillHoldIt) {
  CudaBuffer::Descriptor d = SomeDescriptor();
  d.host = gpu::MachineId();
  d.pid = getpid();  // "ours", but nothing here allocated it
  std::string error =
      ErrorOf([&] { Deserialize<CudaBuffer>(Serialize(d)).data(); });
  EXPECT_THAT(error, HasSubstr("no longer holds")) << error;
}

TEST(CudaBufferNoGpu, AHandleOfTheWrongSizeIsRefused) {
  CudaBuffer::Descriptor d = SomeDescriptor();
  d.ipc_handle = "short";
  std::string error = ErrorOf([&] { Deserialize<CudaBuffer>(Serialize(d)); });
  EXPECT_THAT(error, HasSubstr("IPC handle")) << error;
}

TEST(CollectiveNoGpu, BadBackendsAndRanksAreRefusedFirst) {
  EXPECT_THAT(ErrorOf([] { collective::InitGroup(2, 0, "gloo", "g"); }),
              HasSubstr("unknown collective backend \"gloo\""));
  EXPECT_THAT(ErrorOf([] { collective::InitGroup(2, 0, "cpu", "g"); }),
              HasSubstr("Python"));
  EXPECT_THAT(ErrorOf([] { collective::InitGroup(2, 2, "nccl", "g"); }),
              HasSubstr("rank 2 is not in [0, 2)"));
  EXPECT_THAT(ErrorOf([] { collective::InitGroup(0, 0, "nccl", "g"); }),
              HasSubstr("world_size"));
  EXPECT_FALSE(collective::IsGroupInitialized("g"));
  EXPECT_EQ(collective::GetRank("g"), -1);
}

TEST(CollectiveNoGpu, NcclWithoutAGpuThrowsClearly) {
  if (HasCudaDevice()) GTEST_SKIP() << "this machine has a GPU";
  std::string error =
      ErrorOf([] { collective::InitGroup(1, 0, "nccl", "nogpu"); });
  EXPECT_THAT(error, ::testing::AnyOf(HasSubstr("NCCL is not available"),
                                      HasSubstr("NCCL groups need a GPU")))
      << error;
  EXPECT_FALSE(collective::IsGroupInitialized("nogpu"));
}

TEST(CollectiveNoGpu, AForcedMissingNcclIsNamed) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("LOOM_NCCL_LIB", "/nonexistent/libnccl.so.2", 1);
        std::cerr << ErrorOf(
            [] { collective::InitGroup(1, 0, "nccl", "forced"); });
        std::exit(0);
      },
      ::testing::ExitedWithCode(0),
      "NCCL is not available: LOOM_NCCL_LIB=/nonexistent");
}

TEST(CollectiveNoGpu, CallsOnAGroupNotJoinedThrow) {
  float* nowhere = reinterpret_cast<float*>(0x1000);
  EXPECT_THAT(ErrorOf([&] {
                collective::AllReduce(nowhere, 4, collective::DType::kFloat32,
                                      collective::ReduceOp::kSum, "absent");
              }),
              HasSubstr("\"absent\" is not initialized"));
  EXPECT_THAT(ErrorOf([] { collective::Barrier("absent"); }),
              HasSubstr("not initialized"));
  collective::DestroyGroup("absent");  // a no-op
}

TEST(CollectiveNoGpu, DTypesByName) {
  EXPECT_EQ(collective::DTypeFromName("float32"), collective::DType::kFloat32);
  EXPECT_EQ(collective::DTypeSize(collective::DType::kBFloat16), 2u);
  EXPECT_EQ(collective::DTypeSize(collective::DType::kInt64), 8u);
  EXPECT_THAT(ErrorOf([] { collective::DTypeFromName("complex64"); }),
              HasSubstr("unsupported dtype"));
}

}  // namespace
}  // namespace loom
