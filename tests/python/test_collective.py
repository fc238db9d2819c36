"""loom.collective with the cpu backend: four actors, every operation."""
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
    with pytest.raises(NotImplementedError):
        col.init_collective_group(2, 0, backend="nccl", group_name="bad")
    with pytest.raises(RuntimeError):
        col.allreduce(np.zeros(2), group_name="never-made")
