# tests/python/test_util_queue.py
#
# loom.util.queue.Queue: order, sizes, blocking and timed put/get, the
# no-wait and batch forms, Empty/Full, a queue shared with tasks, the async
# forms, actor_options and shutdown.

import asyncio
import queue as stdlib_queue
import time
import uuid

import pytest

import loom
from loom.exceptions import ActorDiedError
from loom.util.queue import Empty, Full, Queue


@loom.remote
def consume(q, timeout):
    return q.get(timeout=timeout)


@loom.remote
def produce(q, items):
    for item in items:
        q.put(item)
    return len(items)


def test_fifo_and_sizes(loom_cluster):
    q = Queue(maxsize=3)
    assert q.empty() and not q.full() and q.size() == 0 and len(q) == 0
    for i in range(3):
        q.put(i)
    assert q.full() and q.qsize() == 3 and len(q) == 3
    assert [q.get() for _ in range(3)] == [0, 1, 2]
    assert q.empty()
    unbounded = Queue()
    unbounded.put_nowait_batch(range(1000))
    assert not unbounded.full() and unbounded.size() == 1000


def test_nowait_raises_empty_and_full(loom_cluster):
    q = Queue(maxsize=1)
    with pytest.raises(Empty):
        q.get_nowait()
    with pytest.raises(Empty):
        q.get(block=False)
    q.put_nowait("x")
    with pytest.raises(Full):
        q.put_nowait("y")
    with pytest.raises(Full):
        q.put("y", block=False)
    # Empty and Full are queue.Empty and queue.Full, as in the stdlib.
    assert issubclass(Empty, stdlib_queue.Empty)
    assert issubclass(Full, stdlib_queue.Full)
    assert q.get_nowait() == "x"


def test_blocking_get_with_timeout_raises_empty(loom_cluster):
    q = Queue()
    start = time.monotonic()
    with pytest.raises(Empty):
        q.get(timeout=0.5)
    assert 0.5 <= time.monotonic() - start < 10
    with pytest.raises(ValueError, match="non-negative"):
        q.get(timeout=-1)


def test_blocking_put_with_timeout_raises_full(loom_cluster):
    q = Queue(maxsize=1)
    q.put(1)
    start = time.monotonic()
    with pytest.raises(Full):
        q.put(2, timeout=0.5)
    assert 0.5 <= time.monotonic() - start < 10
    assert q.size() == 1


def test_blocked_get_wakes_on_put_and_holds_nothing_up(loom_cluster):
    q = Queue()
    waiting = consume.remote(q, 60)
    time.sleep(0.5)
    # The actor answers other calls while the get waits.
    assert q.size() == 0 and q.empty()
    q.put("hello")
    assert loom.get(waiting, timeout=60) == "hello"


def test_blocked_put_wakes_on_get(loom_cluster):
    q = Queue(maxsize=1)
    q.put(0)
    producer = produce.remote(q, [1, 2])
    time.sleep(0.5)
    assert q.size() == 1
    assert [q.get(timeout=30) for _ in range(3)] == [0, 1, 2]
    assert loom.get(producer, timeout=60) == 2


def test_batches(loom_cluster):
    q = Queue(maxsize=4)
    q.put_nowait_batch([1, 2, 3])
    with pytest.raises(Full, match="Cannot add 2 items"):
        q.put_nowait_batch([4, 5])
    assert q.size() == 3                      # all or nothing
    with pytest.raises(Empty, match="Cannot get 4 items"):
        q.get_nowait_batch(4)
    assert q.get_nowait_batch(2) == [1, 2]
    assert q.get_nowait_batch(0) == []
    assert q.get_nowait_batch(1) == [3]
    with pytest.raises(TypeError):
        q.put_nowait_batch(7)
    with pytest.raises(TypeError):
        q.get_nowait_batch("2")
    with pytest.raises(ValueError):
        q.get_nowait_batch(-1)


def test_shared_with_tasks(loom_cluster):
    q = Queue()
    done = produce.remote(q, list(range(20)))
    got = [q.get(timeout=60) for _ in range(20)]
    assert got == list(range(20))
    assert loom.get(done) == 20


def test_async_forms(loom_cluster):
    q = Queue(maxsize=1)

    async def main():
        await q.put_async("a")
        with pytest.raises(Full):
            await q.put_async("b", timeout=0.2)
        with pytest.raises(Full):
            await q.put_async("b", block=False)
        first = await q.get_async()
        with pytest.raises(Empty):
            await q.get_async(timeout=0.2)
        with pytest.raises(Empty):
            await q.get_async(block=False)
        return first

    assert asyncio.run(main()) == "a"


def test_actor_options_and_shutdown(loom_cluster):
    name = f"queue-{uuid.uuid4().hex[:8]}"
    q = Queue(actor_options={"name": name, "num_cpus": 0})
    q.put(1)
    named = loom.get_actor(name)
    assert loom.get(named.qsize.remote()) == 1
    with pytest.raises(TypeError):
        Queue(actor_options={"no_such_option": 1})
    actor = q.actor
    q.shutdown()
    assert q.actor is None
    with pytest.raises(ActorDiedError):
        loom.get(actor.qsize.remote(), timeout=60)
