"""loom.collective: the cpu backend (four actors, every operation), and
the nccl backend (one actor per GPU, on torch, cupy or ctypes arrays;
skipped without a GPU, and its clear error checked there)."""
import ctypes

import numpy as np
import pytest

import loom
import loom.collective as col


@loom.remote
class Rank:
    def __init__(self, world, rank, group):
        self.rank = rank
        if world:
            col.init_collective_group(world, rank, backend="cpu",
                                      group_name=group)
        self.group = group

    def allreduce(self, op="sum"):
        x = np.arange(6, dtype=np.float64) + self.rank
        col.allreduce(x, group_name=self.group, op=col.ReduceOp(op))
        return x

    def allgather(self):
        out = [np.zeros(3) for _ in range(col.get_collective_group_size(
            self.group))]
        col.allgather(out, np.full(3, float(self.rank)),
                      group_name=self.group)
        return out

    def reducescatter(self):
        world = col.get_collective_group_size(self.group)
        parts = [np.full(2, float(self.rank * 10 + i)) for i in range(world)]
        out = np.zeros(2)
        col.reducescatter(out, parts, group_name=self.group)
        return out

    def broadcast(self):
        x = np.full(4, float(self.rank))
        col.broadcast(x, src_rank=2, group_name=self.group)
        return x

    def reduce(self):
        x = np.full(2, float(self.rank + 1))
        col.reduce(x, dst_rank=1, group_name=self.group)
        return x

    def ring(self):
        # Each rank sends to the next and receives from the previous.
        world = col.get_collective_group_size(self.group)
        col.send(np.full(3, float(self.rank)), (self.rank + 1) % world,
                 group_name=self.group)
        got = np.zeros(3)
        col.recv(got, (self.rank - 1) % world, group_name=self.group)
        return got

    def lazy_allreduce(self):  # a group declared from the driver
        x = np.ones(3) * self.rank
        col.allreduce(x, group_name=self.group)
        return x, col.get_rank(self.group)


def test_cpu_allreduce_across_four_actors(loom_cluster):
    ranks = [Rank.remote(4, r, "ar") for r in range(4)]
    results = loom.get([a.allreduce.remote() for a in ranks], timeout=60)
    expected = sum(np.arange(6, dtype=np.float64) + r for r in range(4))
    for x in results:
        np.testing.assert_array_equal(x, expected)
    mx = loom.get([a.allreduce.remote("max") for a in ranks], timeout=60)
    np.testing.assert_array_equal(mx[0], np.arange(6) + 3)


def test_cpu_collectives(loom_cluster):
    ranks = [Rank.remote(4, r, "all") for r in range(4)]
    for got in loom.get([a.allgather.remote() for a in ranks], timeout=60):
        assert [v[0] for v in got] == [0, 1, 2, 3]
    rs = loom.get([a.reducescatter.remote() for a in ranks], timeout=60)
    # rank r: sum over ranks k of (10k + r) = 60 + 4r
    assert [v[0] for v in rs] == [60, 64, 68, 72]
    bc = loom.get([a.broadcast.remote() for a in ranks], timeout=60)
    assert all((v == 2).all() for v in bc)
    red = loom.get([a.reduce.remote() for a in ranks], timeout=60)
    assert red[1][0] == 10 and red[0][0] == 1  # only dst_rank changes
    ring = loom.get([a.ring.remote() for a in ranks], timeout=60)
    assert [v[0] for v in ring] == [3, 0, 1, 2]


def test_declared_group_joins_on_first_use(loom_cluster):
    actors = [Rank.remote(0, r, "declared") for r in range(3)]
    col.create_collective_group(actors, 3, [2, 0, 1], group_name="declared")
    out = loom.get([a.lazy_allreduce.remote() for a in actors], timeout=60)
    assert [rank for _, rank in out] == [2, 0, 1]
    for x, _ in out:
        np.testing.assert_array_equal(x, np.full(3, 3.0))


def test_bad_groups_are_refused(loom_cluster):
    with pytest.raises(ValueError):
        col.init_collective_group(2, 5, group_name="bad")
    with pytest.raises(ValueError):
        col.init_collective_group(2, 0, backend="gloo", group_name="bad")
    with pytest.raises(RuntimeError):
        col.allreduce(np.zeros(2), group_name="never-made")


def _cuda_devices():
    """GPUs the CUDA driver shows this process (0 without a driver)."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    n = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(n)) != 0:
        return 0
    return n.value


class _CudartArray:
    """A device array made with the CUDA runtime through ctypes, for GPU
    machines without torch or cupy."""

    _lib = None

    @classmethod
    def lib(cls):
        if cls._lib is None:
            for name in ("libcudart.so.13", "libcudart.so",
                         "/usr/local/cuda/lib64/libcudart.so.13"):
                try:
                    lib = ctypes.CDLL(name)
                except OSError:
                    continue
                lib.cudaMalloc.argtypes = [ctypes.POINTER(ctypes.c_void_p),
                                           ctypes.c_size_t]
                lib.cudaMemcpy.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                           ctypes.c_size_t, ctypes.c_int]
                lib.cudaFree.argtypes = [ctypes.c_void_p]
                cls._lib = lib
                break
        return cls._lib

    def __init__(self, host):
        host = np.ascontiguousarray(host)
        self.shape, self.dtype, self.nbytes = host.shape, host.dtype, \
            host.nbytes
        self.ptr = ctypes.c_void_p()
        assert self.lib().cudaMalloc(ctypes.byref(self.ptr), host.nbytes) == 0
        assert self.lib().cudaMemcpy(self.ptr, host.ctypes.data, host.nbytes,
                                     1) == 0  # host to device

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str,
                "data": (self.ptr.value, False), "strides": None,
                "version": 3, "stream": None}

    def get(self):
        out = np.empty(self.shape, self.dtype)
        assert self.lib().cudaMemcpy(out.ctypes.data, self.ptr, self.nbytes,
                                     2) == 0  # device to host
        return out

    def __del__(self):
        if self.ptr.value:
            self.lib().cudaFree(self.ptr)


def _gpu_array_module():
    """torch or cupy, whichever is installed with CUDA, else "cudart"
    (ctypes) when the CUDA runtime loads; None otherwise."""
    try:
        import torch
        if torch.cuda.is_available():
            return "torch"
    except ImportError:
        pass
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            return "cupy"
    except Exception:  # ImportError, or CUDA errors without a GPU
        pass
    return "cudart" if _CudartArray.lib() is not None else None


def test_nccl_without_a_gpu_raises_clearly(loom_cluster):
    if _cuda_devices() > 0:
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="NCCL|GPU"):
        col.init_collective_group(1, 0, backend="nccl", group_name="nogpu")
    assert not col.is_group_initialized("nogpu")


class _FakeGpuArray:
    def __init__(self, typestr, shape, strides=None, stream=None):
        self.__cuda_array_interface__ = {
            "shape": shape, "typestr": typestr, "data": (0xABC000, False),
            "strides": strides, "version": 3, "stream": stream}


def test_nccl_reads_the_cuda_array_interface():
    from loom.collective.collective import _cuda_array
    assert _cuda_array(_FakeGpuArray("<f4", (2, 3))) == (
        0xABC000, 6, "float32", 0)
    assert _cuda_array(_FakeGpuArray("<i8", (4,), (8,), stream=1)) == (
        0xABC000, 4, "int64", 1)
    with pytest.raises(ValueError, match="contiguous"):
        _cuda_array(_FakeGpuArray("<f4", (2, 3), (4, 8)))
    with pytest.raises(TypeError, match="dtype"):
        _cuda_array(_FakeGpuArray("<c8", (2,)))
    with pytest.raises(TypeError, match="__cuda_array_interface__"):
        _cuda_array(np.zeros(3))


@loom.remote
class NcclRank:
    def __init__(self, module):
        self.module = module

    def _array(self, values, dtype="float32"):
        if self.module == "torch":
            import torch
            return torch.tensor(values, dtype=getattr(torch, dtype),
                                device="cuda")
        if self.module == "cupy":
            import cupy
            return cupy.asarray(np.asarray(values, dtype=dtype))
        return _CudartArray(np.asarray(values, dtype=dtype))

    def _host(self, x):
        if self.module == "torch":
            return x.cpu().numpy()
        return x.get()  # cupy and _CudartArray

    def run(self, world, rank, group):
        col.init_collective_group(world, rank, backend="nccl",
                                  group_name=group)
        out = {}
        x = self._array(np.arange(8) + rank)
        col.allreduce(x, group_name=group)
        out["allreduce"] = self._host(x)
        b = self._array(np.full(4, rank * 10.0))
        col.broadcast(b, src_rank=world - 1, group_name=group)
        out["broadcast"] = self._host(b)
        parts = [self._array(np.zeros(3)) for _ in range(world)]
        col.allgather(parts, self._array(np.full(3, float(rank))),
                      group_name=group)
        out["allgather"] = [self._host(p) for p in parts]
        mine = self._array(np.zeros(2))
        col.reducescatter(mine, [self._array(np.full(2, rank * 10.0 + i))
                                 for i in range(world)], group_name=group)
        out["reducescatter"] = self._host(mine)
        col.barrier(group_name=group)
        col.destroy_collective_group(group)
        return out


def test_nccl_collectives_one_actor_per_gpu(loom_cluster):
    module = _gpu_array_module()
    world = _cuda_devices()
    if module is None or world == 0:
        pytest.skip("needs a GPU (and torch, cupy or libcudart)")
    from loom import _core
    if _core.nccl_error() is not None:
        pytest.skip(_core.nccl_error())
    ranks = [NcclRank.options(num_gpus=1).remote(module) for _ in
             range(world)]
    outs = loom.get([a.run.remote(world, r, "nccl_py")
                     for r, a in enumerate(ranks)], timeout=120)
    for rank, out in enumerate(outs):
        np.testing.assert_array_equal(
            out["allreduce"], sum(np.arange(8) + r for r in range(world)))
        np.testing.assert_array_equal(out["broadcast"],
                                      np.full(4, (world - 1) * 10.0))
        assert [p[0] for p in out["allgather"]] == list(range(world))
        np.testing.assert_array_equal(
            out["reducescatter"],
            np.full(2, sum(r * 10.0 + rank for r in range(world))))
    assert _core.kv_get("collective:nccl:nccl_py") is None
