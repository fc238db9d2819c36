// python_bindings/src/bind_gpu.cc: NCCL groups for loom.collective's
// backend "nccl". Device memory arrives as raw pointers (from
// __cuda_array_interface__), element counts and dtype names; every call
// releases the GIL, and loom::Error becomes RuntimeError.
#include "bindings.h"
#include "loom/collective.h"
#include "runtime/gpu/nccl_api.h"
#include "runtime/gpu/nccl_group.h"

namespace loom::py {
namespace {

namespace col = loom::collective;

col::ReduceOp OpFromName(const std::string& op) {
  if (op == "sum") return col::ReduceOp::kSum;
  if (op == "product") return col::ReduceOp::kProduct;
  if (op == "min") return col::ReduceOp::kMin;
  if (op == "max") return col::ReduceOp::kMax;
  throw pyb::value_error("unknown reduce op \"" + op +
                         "\" (sum, product, min, max)");
}

void* Ptr(uintptr_t p) { return reinterpret_cast<void*>(p); }

// Waits for the producer's stream, then runs `fn`, without the GIL.
template <typename Fn>
void Call(uintptr_t stream, Fn fn) {
  pyb::gil_scoped_release release;
  gpu::SynchronizeStream(stream);
  fn();
}

}  // namespace

void BindGpu(pyb::module_& m) {
  m.def("nccl_error", []() -> pyb::object {
    auto nccl = gpu::Nccl();
    if (nccl.ok()) return pyb::none();
    return pyb::str(std::string(nccl.status().message()));
  });
  m.def(
      "nccl_init",
      [](int world, int rank, const std::string& group, int64_t timeout_ms) {
        pyb::gil_scoped_release release;
        col::InitGroup(world, rank, "nccl", group, timeout_ms);
      },
      pyb::arg("world_size"), pyb::arg("rank"), pyb::arg("group"),
      pyb::arg("timeout_ms") = 60000);
  m.def("nccl_destroy", [](const std::string& group) {
    pyb::gil_scoped_release release;
    col::DestroyGroup(group);
  });
  m.def("nccl_allreduce",
        [](const std::string& group, uintptr_t ptr, size_t count,
           const std::string& dtype, const std::string& op, uintptr_t stream) {
          auto t = col::DTypeFromName(dtype);
          auto o = OpFromName(op);
          Call(stream, [&] { col::AllReduce(Ptr(ptr), count, t, o, group); });
        });
  m.def("nccl_broadcast", [](const std::string& group, uintptr_t ptr,
                             size_t count, const std::string& dtype, int root,
                             uintptr_t stream) {
    auto t = col::DTypeFromName(dtype);
    Call(stream, [&] { col::Broadcast(Ptr(ptr), count, t, root, group); });
  });
  m.def("nccl_reduce", [](const std::string& group, uintptr_t ptr, size_t count,
                          const std::string& dtype, int root,
                          const std::string& op, uintptr_t stream) {
    auto t = col::DTypeFromName(dtype);
    auto o = OpFromName(op);
    Call(stream, [&] { col::Reduce(Ptr(ptr), count, t, root, o, group); });
  });
  m.def("nccl_allgather", [](const std::string& group, uintptr_t send,
                             const std::vector<uintptr_t>& recv, size_t count,
                             const std::string& dtype, uintptr_t stream) {
    auto t = col::DTypeFromName(dtype);
    std::vector<void*> outs;
    for (uintptr_t p : recv) outs.push_back(Ptr(p));
    Call(stream, [&] { gpu::AllGatherList(Ptr(send), outs, count, t, group); });
  });
  m.def("nccl_reducescatter",
        [](const std::string& group, const std::vector<uintptr_t>& send,
           uintptr_t recv, size_t count, const std::string& dtype,
           const std::string& op, uintptr_t stream) {
          auto t = col::DTypeFromName(dtype);
          auto o = OpFromName(op);
          std::vector<const void*> ins;
          for (uintptr_t p : send) ins.push_back(Ptr(p));
          Call(stream, [&] {
            gpu::ReduceScatterList(ins, Ptr(recv), count, t, o, group);
          });
        });
  m.def("nccl_send", [](const std::string& group, uintptr_t ptr, size_t count,
                        const std::string& dtype, int peer, uintptr_t stream) {
    auto t = col::DTypeFromName(dtype);
    Call(stream, [&] { col::Send(Ptr(ptr), count, t, peer, group); });
  });
  m.def("nccl_recv", [](const std::string& group, uintptr_t ptr, size_t count,
                        const std::string& dtype, int peer, uintptr_t stream) {
    auto t = col::DTypeFromName(dtype);
    Call(stream, [&] { col::Recv(Ptr(ptr), count, t, peer, group); });
  });
  m.def("nccl_barrier", [](const std::string& group) {
    pyb::gil_scoped_release release;
    col::Barrier(group);
  });
}

}  // namespace loom::py
