# tests/python/test_callbacks.py
#
# No deadlock when runtime threads call into Python while a Python thread
# waits in get: the GIL must be released while blocked, and callbacks that
# complete awaited refs or run actor calls on threads must get it.
#
# Every get here has a timeout, so a lost wake-up fails the test with
# GetTimeoutError; a true deadlock (no Python code runs at all) is ended by
# the watchdog in conftest.py.

import asyncio
import threading
import time

import loom
from conftest import touch, wait_for_file


@loom.remote
def echo(x):
    return x


@loom.remote
def after_gate(gate, value):
    wait_for_file(gate, timeout=60)
    return value


def test_driver_threads_run_while_the_main_thread_waits_in_get(loom_cluster, tmp_path):
    gate = str(tmp_path / "gate")
    slow = after_gate.remote(gate, "slow done")
    done = {}

    def background():
        try:
            for i in range(200):
                assert loom.get(loom.put(i), timeout=30) == i
            done["tasks"] = loom.get([echo.remote(i) for i in range(50)], timeout=60)
        finally:
            # Opens the gate the main thread waits on: if get held the GIL,
            # this never runs and the main thread's get times out.
            touch(gate)

    thread = threading.Thread(target=background, daemon=True)
    thread.start()
    assert loom.get(slow, timeout=90) == "slow done"
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert done["tasks"] == list(range(50))


@loom.remote
class AsyncAwaiter:
    async def await_nested(self, holder):
        # Completes when the runtime signals that the ref is ready, from one
        # of its own threads, onto this actor's event loop.
        return await holder["ref"]

    async def await_many(self, holder):
        return sum(await asyncio.gather(*holder["refs"]))


def test_async_actor_coroutines_complete_while_the_driver_blocks_in_get(loom_cluster, tmp_path):
    gate = str(tmp_path / "gate")
    actor = AsyncAwaiter.options(max_concurrency=64).remote()
    try:
        gated = [after_gate.remote(gate, i) for i in range(4)]
        calls = [actor.await_nested.remote({"ref": gated[i % 4]}) for i in range(40)]
        calls.append(actor.await_many.remote({"refs": [echo.remote(i) for i in range(100)]}))
        threading.Timer(1.0, touch, args=(gate,)).start()
        assert loom.get(calls, timeout=90) == [i % 4 for i in range(40)] + [sum(range(100))]
    finally:
        touch(gate)
        loom.kill(actor)


@loom.remote
class ThreadedService:
    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0

    def handle(self, i):
        # Each call blocks in the runtime (put, get, a nested task) on one of
        # the actor's threads while other calls arrive on others.
        ref = loom.put(i)
        value = loom.get(echo.remote(ref), timeout=60)
        with self.lock:
            self.count += 1
        return value * 2

    def count_calls(self):
        return self.count


def test_many_concurrent_calls_into_a_threaded_actor(loom_cluster):
    service = ThreadedService.options(max_concurrency=8).remote()
    try:
        start = time.monotonic()
        refs = [service.handle.remote(i) for i in range(300)]
        assert loom.get(refs, timeout=150) == [2 * i for i in range(300)]
        assert loom.get(service.count_calls.remote(), timeout=30) == 300
        assert time.monotonic() - start < 150
    finally:
        loom.kill(service)


def test_threaded_actor_calls_from_many_driver_threads(loom_cluster):
    service = ThreadedService.options(max_concurrency=8).remote()
    results, errors = {}, []

    def caller(k):
        try:
            results[k] = loom.get([service.handle.remote(k * 100 + i) for i in range(20)],
                                  timeout=120)
        except Exception as e:  # reported below
            errors.append(e)

    try:
        threads = [threading.Thread(target=caller, args=(k,), daemon=True) for k in range(6)]
        for t in threads:
            t.start()
        # The main thread waits in get too, on calls of its own.
        assert loom.get([service.handle.remote(-i) for i in range(20)], timeout=120) == [
            -2 * i for i in range(20)]
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert all(not t.is_alive() for t in threads)
        for k in range(6):
            assert results[k] == [2 * (k * 100 + i) for i in range(20)]
    finally:
        loom.kill(service)
