"""The collective API over a rendezvous actor per group (backend "cpu")."""
import asyncio
import enum
import json

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


_groups = {}


def _kv_key(name):
    return f"collective:{name}"


def init_collective_group(world_size, rank, backend="cpu",
                          group_name="default"):
    """Joins this process (an actor or task) to the group as `rank`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}")
    if backend == "nccl":
        raise NotImplementedError(
            "the nccl backend is not available yet; use backend='cpu'")
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError("world_size must be an int >= 1")
    if not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size})")
    if group_name in _groups:
        raise RuntimeError(f"group {group_name!r} is already initialized "
                           "in this process")
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
    _groups.pop(group_name, None)


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
    _assign(tensor, _reduce(g.exchange(np.asarray(tensor)), op))


def allgather(tensor_list, tensor, group_name="default"):
    """Fills tensor_list[i] with rank i's `tensor`."""
    g = _group(group_name)
    if len(tensor_list) != g.world_size:
        raise ValueError("tensor_list needs one tensor per rank")
    for dst, value in zip(tensor_list, g.exchange(np.asarray(tensor))):
        _assign(dst, value)


def reducescatter(tensor, tensor_list, group_name="default",
                  op=ReduceOp.SUM):
    """Rank r gets (in `tensor`) the reduction of every rank's
    tensor_list[r]."""
    g = _group(group_name)
    if len(tensor_list) != g.world_size:
        raise ValueError("tensor_list needs one tensor per rank")
    values = g.exchange([np.asarray(t) for t in tensor_list])
    _assign(tensor, _reduce([v[g.rank] for v in values], op))


def broadcast(tensor, src_rank=0, group_name="default"):
    """Every rank's `tensor` becomes src_rank's."""
    g = _group(group_name)
    values = g.exchange(np.asarray(tensor) if g.rank == src_rank else None)
    if g.rank != src_rank:
        _assign(tensor, values[src_rank])


def reduce(tensor, dst_rank=0, group_name="default", op=ReduceOp.SUM):
    """dst_rank's `tensor` becomes the reduction over all ranks."""
    g = _group(group_name)
    values = g.exchange(np.asarray(tensor))
    if g.rank == dst_rank:
        _assign(tensor, _reduce(values, op))


def barrier(group_name="default"):
    _group(group_name).exchange(None)


def send(tensor, dst_rank, group_name="default"):
    g = _group(group_name)
    n = g.sent.get(dst_rank, 0)
    g.sent[dst_rank] = n + 1
    loom.get(g.rendezvous.post.remote((g.rank, dst_rank, n),
                                      [loom.put(np.asarray(tensor))]))


def recv(tensor, src_rank, group_name="default"):
    g = _group(group_name)
    n = g.received.get(src_rank, 0)
    g.received[src_rank] = n + 1
    boxed = loom.get(g.rendezvous.take.remote((src_rank,
                                               g.rank, n)))
    _assign(tensor, loom.get(boxed[0]))
