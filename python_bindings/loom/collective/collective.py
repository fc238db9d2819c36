"""The collective API: backend "cpu" over a rendezvous actor per group,
backend "nccl" over NCCL in the C++ core (loom/collective.h)."""
import asyncio
import enum
import json
import math

import numpy as np

import loom
from loom import _core

BACKENDS = ("cpu", "nccl")


class ReduceOp(enum.Enum):
    SUM = "sum"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"


_REDUCERS = {ReduceOp.SUM: np.add, ReduceOp.PRODUCT: np.multiply,
             ReduceOp.MIN: np.minimum, ReduceOp.MAX: np.maximum}


@loom.remote(num_cpus=0)
class _Rendezvous:
    """Swaps the refs of each collective call among a group's ranks: a call
    (its sequence number) completes once every rank has contributed.
    Point-to-point messages wait in mailboxes keyed by (src, dst, n)."""

    def __init__(self, world_size):
        self.world = world_size
        self.calls = {}    # seq -> {rank: [ref]}
        self.events = {}   # seq -> asyncio.Event
        self.reads = {}    # seq -> ranks that have their answer
        self.mail = {}     # (src, dst, n) -> [ref]
        self.mail_events = {}

    async def exchange(self, seq, rank, boxed):
        slots = self.calls.setdefault(seq, {})
        event = self.events.setdefault(seq, asyncio.Event())
        slots[rank] = boxed
        if len(slots) == self.world:
            event.set()
        await event.wait()
        out = [slots[r] for r in range(self.world)]
        reads = self.reads.setdefault(seq, set())
        reads.add(rank)
        if len(reads) == self.world:  # everyone has its answer
            del self.calls[seq], self.events[seq], self.reads[seq]
        return out

    async def post(self, key, boxed):
        self.mail[key] = boxed
        self.mail_events.setdefault(key, asyncio.Event()).set()

    async def take(self, key):
        await self.mail_events.setdefault(key, asyncio.Event()).wait()
        del self.mail_events[key]
        return self.mail.pop(key)


class _Group:
    def __init__(self, world_size, rank, backend, name):
        self.world_size = world_size
        self.rank = rank
        self.backend = backend
        self.name = name
        self.seq = 0
        self.sent = {}      # dst -> count
        self.received = {}  # src -> count
        self.rendezvous = _Rendezvous.options(
            name=f"loom_collective:{name}", namespace="loom_collective",
            get_if_exists=True, max_concurrency=1000).remote(world_size)

    def exchange(self, value):
        """Every rank's value for this call, in rank order."""
        self.seq += 1
        boxed = [loom.put(value)] if value is not None else None
        out = loom.get(self.rendezvous.exchange.remote(self.seq, self.rank,
                                                       boxed))
        refs = [b[0] if b is not None else None for b in out]
        present = [r for r in refs if r is not None]
        values = iter(loom.get(present))
        return [next(values) if r is not None else None for r in refs]


class _NcclGroup:
    """A group in the C++ core: NCCL on this process's GPU."""

    def __init__(self, world_size, rank, name):
        error = _core.nccl_error()
        if error is not None:
            raise RuntimeError(f"backend 'nccl' is not available: {error}")
        self.world_size = world_size
        self.rank = rank
        self.backend = "nccl"
        self.name = name
        _core.nccl_init(world_size, rank, name)  # RuntimeError: no GPU, ...

    def destroy(self):
        _core.nccl_destroy(self.name)


# __cuda_array_interface__ typestr (without the byte order) -> NCCL dtype.
_CUDA_DTYPES = {"i1": "int8", "u1": "uint8", "b1": "uint8", "i4": "int32",
                "u4": "uint32", "i8": "int64", "u8": "uint64",
                "f2": "float16", "f4": "float32", "f8": "float64"}


def _cuda_array(tensor):
    """(pointer, elements, dtype, stream) of a GPU array, from its
    __cuda_array_interface__ (torch CUDA tensors, cupy arrays, numba)."""
    cai = getattr(tensor, "__cuda_array_interface__", None)
    if cai is None:
        raise TypeError(
            "backend 'nccl' takes GPU arrays exposing __cuda_array_interface__"
            f" (torch CUDA tensors, cupy arrays), not {type(tensor).__name__}")
    typestr = cai["typestr"]
    dtype = _CUDA_DTYPES.get(typestr[1:])
    if dtype is None or typestr[0] == ">":
        raise TypeError(f"backend 'nccl' does not take dtype {typestr!r}")
    shape = tuple(cai["shape"])
    strides = cai.get("strides")
    if strides is not None:
        itemsize = int(typestr[2:])
        expected, step = [], itemsize
        for n in reversed(shape):
            expected.append(step)
            step *= n
        if tuple(reversed(expected)) != tuple(strides) and \
                math.prod(shape) > 1:
            raise ValueError("backend 'nccl' needs contiguous arrays")
    ptr, _ = cai["data"]
    stream = cai.get("stream") or 0
    return ptr, math.prod(shape), dtype, stream


_groups = {}


def _kv_key(name):
    return f"collective:{name}"


def init_collective_group(world_size, rank, backend="cpu",
                          group_name="default"):
    """Joins this process (an actor or task) to the group as `rank`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}")
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError("world_size must be an int >= 1")
    if not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size})")
    if group_name in _groups:
        raise RuntimeError(f"group {group_name!r} is already initialized "
                           "in this process")
    if backend == "nccl":
        _groups[group_name] = _NcclGroup(world_size, rank, group_name)
    else:
        _groups[group_name] = _Group(world_size, rank, backend, group_name)


def create_collective_group(actors, world_size, ranks, backend="cpu",
                            group_name="default"):
    """Declares a group of actors from the driver: each actor joins with its
    rank the first time it calls a collective on the group."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}")
    if len(actors) != len(ranks) or sorted(ranks) != list(range(world_size)):
        raise ValueError("ranks must be 0..world_size-1, one per actor")
    spec = {"world_size": world_size, "backend": backend,
            "ranks": {a._actor_id.hex(): r for a, r in zip(actors, ranks)}}
    _core.kv_put(_kv_key(group_name), json.dumps(spec).encode())


def _group(name):
    g = _groups.get(name)
    if g is not None:
        return g
    data = _core.kv_get(_kv_key(name))
    actor = loom.get_runtime_context().get_actor_id()
    if data is not None and actor is not None:
        spec = json.loads(data)
        rank = spec["ranks"].get(actor)
        if rank is not None:
            init_collective_group(spec["world_size"], rank, spec["backend"],
                                  name)
            return _groups[name]
    raise RuntimeError(f"collective group {name!r} is not initialized in "
                       "this process")


def is_group_initialized(group_name="default"):
    return group_name in _groups


def destroy_collective_group(group_name="default"):
    g = _groups.pop(group_name, None)
    if isinstance(g, _NcclGroup):
        g.destroy()


def get_rank(group_name="default"):
    g = _groups.get(group_name)
    return g.rank if g else -1


def get_collective_group_size(group_name="default"):
    g = _groups.get(group_name)
    return g.world_size if g else -1


def _reduce(values, op):
    fn = _REDUCERS[ReduceOp(op)]
    out = np.array(values[0], copy=True)
    for v in values[1:]:
        fn(out, v, out=out)
    return out


def _assign(tensor, value):
    np.copyto(np.asarray(tensor), value)


def allreduce(tensor, group_name="default", op=ReduceOp.SUM):
    """Replaces `tensor` (in place) with the reduction over all ranks."""
    g = _group(group_name)
    if g.backend == "nccl":
        ptr, n, dtype, stream = _cuda_array(tensor)
        _core.nccl_allreduce(g.name, ptr, n, dtype, ReduceOp(op).value,
                             stream)
        return
    _assign(tensor, _reduce(g.exchange(np.asarray(tensor)), op))


def _cuda_arrays(tensor, tensor_list):
    """`tensor`'s pointer, tensor_list's pointers, and the count, dtype and
    stream they share (ValueError when the list's tensors differ)."""
    ptr, n, dtype, stream = _cuda_array(tensor)
    others = [_cuda_array(t) for t in tensor_list]
    if any(o[1] != n or o[2] != dtype for o in others):
        raise ValueError("tensor_list's tensors must match `tensor`")
    return ptr, [o[0] for o in others], n, dtype, stream


def allgather(tensor_list, tensor, group_name="default"):
    """Fills tensor_list[i] with rank i's `tensor`."""
    g = _group(group_name)
    if len(tensor_list) != g.world_size:
        raise ValueError("tensor_list needs one tensor per rank")
    if g.backend == "nccl":
        ptr, ptrs, n, dtype, stream = _cuda_arrays(tensor, tensor_list)
        _core.nccl_allgather(g.name, ptr, ptrs, n, dtype, stream)
        return
    for dst, value in zip(tensor_list, g.exchange(np.asarray(tensor))):
        _assign(dst, value)


def reducescatter(tensor, tensor_list, group_name="default",
                  op=ReduceOp.SUM):
    """Rank r gets (in `tensor`) the reduction of every rank's
    tensor_list[r]."""
    g = _group(group_name)
    if len(tensor_list) != g.world_size:
        raise ValueError("tensor_list needs one tensor per rank")
    if g.backend == "nccl":
        ptr, ptrs, n, dtype, stream = _cuda_arrays(tensor, tensor_list)
        _core.nccl_reducescatter(g.name, ptrs, ptr, n, dtype,
                                 ReduceOp(op).value, stream)
        return
    values = g.exchange([np.asarray(t) for t in tensor_list])
    _assign(tensor, _reduce([v[g.rank] for v in values], op))


def broadcast(tensor, src_rank=0, group_name="default"):
    """Every rank's `tensor` becomes src_rank's."""
    g = _group(group_name)
    if g.backend == "nccl":
        ptr, n, dtype, stream = _cuda_array(tensor)
        _core.nccl_broadcast(g.name, ptr, n, dtype, src_rank, stream)
        return
    values = g.exchange(np.asarray(tensor) if g.rank == src_rank else None)
    if g.rank != src_rank:
        _assign(tensor, values[src_rank])


def reduce(tensor, dst_rank=0, group_name="default", op=ReduceOp.SUM):
    """dst_rank's `tensor` becomes the reduction over all ranks."""
    g = _group(group_name)
    if g.backend == "nccl":
        ptr, n, dtype, stream = _cuda_array(tensor)
        _core.nccl_reduce(g.name, ptr, n, dtype, dst_rank, ReduceOp(op).value,
                          stream)
        return
    values = g.exchange(np.asarray(tensor))
    if g.rank == dst_rank:
        _assign(tensor, _reduce(values, op))


def barrier(group_name="default"):
    g = _group(group_name)
    if g.backend == "nccl":
        _core.nccl_barrier(g.name)
        return
    g.exchange(None)


def send(tensor, dst_rank, group_name="default"):
    g = _group(group_name)
    if g.backend == "nccl":
        ptr, n, dtype, stream = _cuda_array(tensor)
        _core.nccl_send(g.name, ptr, n, dtype, dst_rank, stream)
        return
    n = g.sent.get(dst_rank, 0)
    g.sent[dst_rank] = n + 1
    loom.get(g.rendezvous.post.remote((g.rank, dst_rank, n),
                                      [loom.put(np.asarray(tensor))]))


def recv(tensor, src_rank, group_name="default"):
    g = _group(group_name)
    if g.backend == "nccl":
        ptr, n, dtype, stream = _cuda_array(tensor)
        _core.nccl_recv(g.name, ptr, n, dtype, src_rank, stream)
        return
    n = g.received.get(src_rank, 0)
    g.received[src_rank] = n + 1
    boxed = loom.get(g.rendezvous.take.remote((src_rank,
                                               g.rank, n)))
    _assign(tensor, loom.get(boxed[0]))
