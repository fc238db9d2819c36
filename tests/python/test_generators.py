# tests/python/test_generators.py
#
# Generators as tasks (docs/python.md, "Generators"): num_returns="streaming"
# on tasks and actor methods, sync and async, hands each yielded value's ref
# to the caller as soon as it is yielded; an error arrives at its position;
# the producer waits for a consumer that falls behind; dropping the
# generator stops it; a retried task's items are seen once; items cross
# nodes. num_returns="dynamic" as Ray had it.

import asyncio
import os
import signal

import numpy as np
import pytest

import loom
from loom.cluster_utils import Cluster
from loom.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from conftest import touch, wait_for_file, wait_until


@loom.remote(num_returns="streaming")
def count_to(n):
    for i in range(n):
        yield i


@loom.remote(num_returns="streaming")
def gated(gate):
    yield "first"
    wait_for_file(gate, timeout=60)
    yield "second"


def test_each_item_is_ready_while_the_task_still_runs(loom_cluster, tmp_path):
    gate = str(tmp_path / "gate")
    gen = gated.remote(gate)
    first = next(gen)
    # The task waits for the gate, which only this consumer opens: the
    # first item arrived before the task could end.
    assert loom.get(first, timeout=60) == "first"
    assert not gen.is_finished()
    touch(gate)
    assert [loom.get(r) for r in gen] == ["second"]
    with pytest.raises(StopIteration):
        next(gen)


def test_items_come_in_order_and_the_return_counts_them(loom_cluster):
    gen = count_to.remote(50)
    assert isinstance(gen, loom.ObjectRefGenerator)
    assert [loom.get(r) for r in gen] == list(range(50))
    assert loom.get(gen.completed()) == 50
    assert [loom.get(r) for r in count_to.remote(0)] == []


@loom.remote(num_returns="streaming")
def fails_after(n):
    for i in range(n):
        yield i
    raise ZeroDivisionError("the generator gave up")


def test_an_error_arrives_at_its_position(loom_cluster):
    refs = list(fails_after.remote(2))
    assert len(refs) == 3
    assert loom.get(refs[:2]) == [0, 1]
    with pytest.raises(ZeroDivisionError, match="gave up"):
        loom.get(refs[2])


@loom.remote(num_returns="streaming")
def not_a_generator():
    return 5


def test_a_function_that_is_no_generator_fails_clearly(loom_cluster):
    refs = list(not_a_generator.remote())
    assert len(refs) == 1
    with pytest.raises(TypeError, match="not a generator"):
        loom.get(refs[0])


@loom.remote(num_returns="streaming", _generator_backpressure_num_objects=2)
def counted(n, made):
    for i in range(n):
        touch(os.path.join(made, str(i)))
        yield np.full(4, i)


def test_the_producer_waits_for_a_slow_consumer(loom_cluster, tmp_path):
    made = str(tmp_path)
    gen = counted.remote(40, made)
    assert loom.get(next(gen))[0] == 0
    # It runs ahead by at most twice its window (2) beyond what was read
    # (1), plus the item it is holding: nowhere near all 40.
    wait_until(lambda: len(os.listdir(made)) >= 3, what="items made")
    import time
    time.sleep(1.0)
    assert len(os.listdir(made)) <= 1 + 2 * 2 + 1
    rest = [int(loom.get(r)[0]) for r in gen]
    assert rest == list(range(1, 40))


@loom.remote(num_returns="streaming", _generator_backpressure_num_objects=1)
def forever(closed):
    try:
        i = 0
        while True:
            yield i
            i += 1
    finally:
        touch(closed)


def test_dropping_the_generator_stops_the_producer(loom_cluster, tmp_path):
    closed = str(tmp_path / "closed")
    gen = forever.remote(closed)
    assert loom.get(next(gen)) == 0
    done = gen.completed()
    del gen
    # The producer was waiting for room: it hears the stream is gone,
    # closes the generator and ends.
    wait_for_file(closed, timeout=60)
    assert loom.get(done, timeout=60) >= 1


@loom.remote(num_returns="streaming", max_retries=1)
def dies_once(marker):
    for i in range(10):
        if i == 5 and not os.path.exists(marker):
            touch(marker)
            os.kill(os.getpid(), signal.SIGKILL)
        yield i


def test_a_retried_generator_gives_each_item_once(loom_cluster, tmp_path):
    gen = dies_once.remote(str(tmp_path / "died"))
    assert [loom.get(r) for r in gen] == list(range(10))
    assert os.path.exists(tmp_path / "died")


def test_cancel_ends_a_streaming_task(loom_cluster, tmp_path):
    gen = gated.remote(str(tmp_path / "never"))
    assert loom.get(next(gen)) == "first"
    loom.cancel(gen)
    with pytest.raises(loom.exceptions.TaskCancelledError):
        loom.get([r for r in gen])


@loom.remote
class Producer:
    @loom.method(num_returns="streaming")
    def numbers(self, n):
        for i in range(n):
            yield i * 10

    @loom.method(num_returns="streaming")
    async def ticks(self, n):
        for i in range(n):
            await asyncio.sleep(0)
            yield f"tick {i}"


@loom.remote
class SyncProducer:
    def numbers(self, n):
        for i in range(n):
            yield i


def test_actor_methods_stream_sync_and_async(loom_cluster):
    p = Producer.remote()
    assert [loom.get(r) for r in p.numbers.remote(5)] == [0, 10, 20, 30, 40]
    assert [loom.get(r) for r in p.ticks.remote(3)] == [
        "tick 0", "tick 1", "tick 2"]
    s = SyncProducer.remote()
    gen = s.numbers.options(num_returns="streaming").remote(4)
    assert [loom.get(r) for r in gen] == [0, 1, 2, 3]


def test_async_for_reads_a_stream(loom_cluster):
    async def consume():
        out = []
        async for ref in count_to.remote(5):
            out.append(await ref)
        return out
    assert asyncio.run(consume()) == [0, 1, 2, 3, 4]


@loom.remote(num_returns="dynamic")
def split(n):
    for i in range(n):
        yield np.arange(i + 1)


def test_dynamic_returns_one_ref_to_all_the_items(loom_cluster):
    ref = split.remote(4)
    items = loom.get(ref)
    assert isinstance(items, loom.DynamicObjectRefGenerator)
    assert len(items) == 4
    assert [loom.get(r).tolist() for r in items] == [
        [0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]


def test_bad_num_returns_are_refused(loom_cluster):
    with pytest.raises(TypeError, match="streaming"):
        count_to.options(num_returns="lazy")
    with pytest.raises(TypeError):
        count_to.options(_generator_backpressure_num_objects="2")


@loom.remote(num_returns="streaming")
def big_items(n):
    for i in range(n):
        yield np.full(1 << 18, i, dtype=np.int64)  # 2 MiB: in the store
    yield loom.get_runtime_context().get_node_id()


def test_streaming_across_two_nodes(no_cluster):
    with Cluster(head_node_args={"num_cpus": 1}) as cluster:
        other = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes(timeout=60)
        cluster.connect()
        gen = big_items.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(
                other.node_id, soft=False)).remote(5)
        refs = list(gen)
        assert [int(loom.get(r)[0]) for r in refs[:5]] == list(range(5))
        assert all(loom.get(r).shape == (1 << 18,) for r in refs[:5])
        assert loom.get(refs[5]) == other.node_id
        loom.shutdown()
