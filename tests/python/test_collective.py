"""loom.collective: the cpu backend (groups of two and three actors, every
operation), and the nccl backend (one actor per GPU, on torch, cupy or
ctypes arrays; skipped without a GPU, and its clear error checked there).

Every output is filled with NaN before the call, so a collective that
writes nothing fails; every reduction runs on two ranks or more, where the
result differs from each rank's input."""
import ctypes

import numpy as np
import pytest

import loom
import loom.collective as col

WORLDS = [2, 3]


def _nans(*shape):
    return np.full(shape, np.nan)


@loom.remote(num_cpus=0)
class Rank:
    def __init__(self, world, rank, group):
        self.rank = rank
        if world:
            col.init_collective_group(world, rank, backend="cpu",
                                      group_name=group)
        self.group = group

    def world(self):
        return col.get_collective_group_size(self.group)

    def allreduce(self, op="sum"):
        # In place: the output is the input, which differs from the result.
        x = np.arange(1, 7, dtype=np.float64) + 10 * self.rank
        col.allreduce(x, group_name=self.group, op=col.ReduceOp(op))
        return x

    def allgather(self):
        out = [_nans(3) for _ in range(self.world())]
        col.allgather(out, np.full(3, self.rank + 1.0), group_name=self.group)
        return out

    def reducescatter(self):
        parts = [np.full(2, self.rank * 10.0 + i) for i in range(self.world())]
        out = _nans(2)
        col.reducescatter(out, parts, group_name=self.group)
        return out

    def broadcast(self, src):
        x = np.arange(4) + 100.0 if self.rank == src else _nans(4)
        col.broadcast(x, src_rank=src, group_name=self.group)
        return x

    def reduce(self, dst):
        x = np.full(2, self.rank + 1.0)
        col.reduce(x, dst_rank=dst, group_name=self.group)
        return x

    def ring(self):
        # Each rank sends to the next and receives from the previous.
        world = self.world()
        col.send(np.full(3, self.rank + 1.0), (self.rank + 1) % world,
                 group_name=self.group)
        got = _nans(3)
        col.recv(got, (self.rank - 1) % world, group_name=self.group)
        return got

    def barrier(self):
        col.barrier(group_name=self.group)
        return True

    def lazy_allreduce(self):  # a group declared from the driver
        x = np.ones(3) * (self.rank + 1)
        col.allreduce(x, group_name=self.group)
        return x, col.get_rank(self.group)


def _call_all(ranks, method, *args):
    return loom.get([getattr(a, method).remote(*args) for a in ranks],
                    timeout=60)


@pytest.mark.parametrize("world", WORLDS)
def test_cpu_allreduce_every_op(loom_cluster, world):
    ranks = [Rank.remote(world, r, f"ar{world}") for r in range(world)]
    inputs = [np.arange(1, 7, dtype=np.float64) + 10 * r for r in range(world)]
    reducers = {"sum": np.add, "product": np.multiply, "min": np.minimum,
                "max": np.maximum}
    for op, fn in reducers.items():
        expected = inputs[0].copy()
        for x in inputs[1:]:
            expected = fn(expected, x)
        for rank, x in enumerate(_call_all(ranks, "allreduce", op)):
            assert x.dtype == np.float64
            np.testing.assert_array_equal(x, expected,
                                          err_msg=f"{op} on rank {rank}")
    # sum and product differ from every rank's input: a rank whose array
    # the call left alone fails above.
    assert all((np.add.reduce(inputs) != x).all() for x in inputs)


@pytest.mark.parametrize("world", WORLDS)
def test_cpu_collectives(loom_cluster, world):
    ranks = [Rank.remote(world, r, f"all{world}") for r in range(world)]
    for rank, got in enumerate(_call_all(ranks, "allgather")):
        np.testing.assert_array_equal(
            np.stack(got), [np.full(3, r + 1.0) for r in range(world)],
            err_msg=f"allgather on rank {rank}")
    # rank r: the sum over ranks k of (10k + r)
    for rank, got in enumerate(_call_all(ranks, "reducescatter")):
        np.testing.assert_array_equal(
            got, np.full(2, sum(10.0 * k + rank for k in range(world))),
            err_msg=f"reducescatter on rank {rank}")
    src = world - 1
    for rank, got in enumerate(_call_all(ranks, "broadcast", src)):
        np.testing.assert_array_equal(got, np.arange(4) + 100.0,
                                      err_msg=f"broadcast on rank {rank}")
    # Only dst_rank's array changes, to the sum of every rank's.
    red = _call_all(ranks, "reduce", 1)
    for rank, got in enumerate(red):
        want = world * (world + 1) / 2 if rank == 1 else rank + 1.0
        np.testing.assert_array_equal(got, np.full(2, want),
                                      err_msg=f"reduce on rank {rank}")
    for rank, got in enumerate(_call_all(ranks, "ring")):
        np.testing.assert_array_equal(
            got, np.full(3, (rank - 1) % world + 1.0),
            err_msg=f"recv on rank {rank}")
    assert _call_all(ranks, "barrier") == [True] * world


def test_declared_group_joins_on_first_use(loom_cluster):
    actors = [Rank.remote(0, r, "declared") for r in range(3)]
    col.create_collective_group(actors, 3, [2, 0, 1], group_name="declared")
    out = loom.get([a.lazy_allreduce.remote() for a in actors], timeout=60)
    assert [rank for _, rank in out] == [2, 0, 1]
    for x, _ in out:  # 1 + 2 + 3, from ones * (rank + 1)
        np.testing.assert_array_equal(x, np.full(3, 6.0))


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
        """Every collective once; outputs filled with NaN before each."""
        col.init_collective_group(world, rank, backend="nccl",
                                  group_name=group)
        out = {}
        x = self._array(np.arange(8) + 10.0 * rank)  # in place
        col.allreduce(x, group_name=group)
        out["allreduce"] = self._host(x)
        src = world - 1
        b = self._array(np.arange(4) + 100.0 if rank == src else
                        np.full(4, np.nan))
        col.broadcast(b, src_rank=src, group_name=group)
        out["broadcast"] = self._host(b)
        parts = [self._array(np.full(3, np.nan)) for _ in range(world)]
        col.allgather(parts, self._array(np.full(3, rank + 1.0)),
                      group_name=group)
        out["allgather"] = [self._host(p) for p in parts]
        mine = self._array(np.full(2, np.nan))
        col.reducescatter(mine, [self._array(np.full(2, rank * 10.0 + i))
                                 for i in range(world)], group_name=group)
        out["reducescatter"] = self._host(mine)
        col.barrier(group_name=group)
        col.destroy_collective_group(group)
        return out


def _nccl_ranks(min_gpus):
    """(array module, world): one rank per GPU; skips the test when the
    machine has fewer than min_gpus GPUs or NCCL is not built in."""
    module = _gpu_array_module()
    world = _cuda_devices()
    if module is None or world == 0:
        pytest.skip("needs a GPU (and torch, cupy or libcudart)")
    if world < min_gpus:
        pytest.skip(f"needs {min_gpus} GPUs: this machine has {world}")
    from loom import _core
    if _core.nccl_error() is not None:
        pytest.skip(_core.nccl_error())
    return module, world


def _nccl_run(module, world, group):
    from loom import _core
    ranks = [NcclRank.options(num_gpus=1).remote(module) for _ in
             range(world)]
    outs = loom.get([a.run.remote(world, r, group)
                     for r, a in enumerate(ranks)], timeout=120)
    assert _core.kv_get(f"collective:nccl:{group}") is None
    return outs


def _check_moved(out, rank, world):
    """allgather and reducescatter, which write into NaN-filled outputs,
    so that a call that moves nothing fails even with one rank."""
    np.testing.assert_array_equal(
        np.stack(out["allgather"]),
        [np.full(3, r + 1.0) for r in range(world)],
        err_msg=f"allgather on rank {rank}")
    np.testing.assert_array_equal(
        out["reducescatter"],
        np.full(2, sum(r * 10.0 + rank for r in range(world))),
        err_msg=f"reducescatter on rank {rank}")


def test_nccl_moves_data_on_one_gpu(loom_cluster):
    module, _ = _nccl_ranks(1)
    (out,) = _nccl_run(module, 1, "nccl_one")
    # One rank: allreduce and broadcast leave the array as it was, so only
    # the calls with an output of their own are checked here.
    _check_moved(out, 0, 1)


def test_nccl_collectives_one_actor_per_gpu(loom_cluster):
    # Reductions and broadcast change an array only with two ranks or more.
    module, world = _nccl_ranks(2)
    for rank, out in enumerate(_nccl_run(module, world, "nccl_py")):
        np.testing.assert_array_equal(
            out["allreduce"],
            sum(np.arange(8) + 10.0 * r for r in range(world)),
            err_msg=f"allreduce on rank {rank}")
        np.testing.assert_array_equal(out["broadcast"], np.arange(4) + 100.0,
                                      err_msg=f"broadcast on rank {rank}")
        _check_moved(out, rank, world)
