# tests/python/test_actor_options.py
#
# Actor options from Ray: concurrency groups (threaded and async actors,
# per method and per call), loom.actor.exit_actor(), and readiness without
# a user method (__loom_ready__ / __ray_ready__).
#
# Concurrency is measured by counting the calls inside a method at once:
# each call waits (bounded) until the expected number are inside, then
# lingers so that any call past the limit would be counted too.

import asyncio
import os
import threading
import time

import pytest

import loom
from loom.actor import exit_actor
from loom.exceptions import ActorDiedError, TaskError
from conftest import process_gone, wait_until


class _Counting:
    """Counts calls inside per group; peak is the most at once."""

    def _setup(self):
        self.cond = threading.Condition()
        self.active = {}
        self.peak = {}

    def _enter(self, group, expect):
        with self.cond:
            self.active[group] = self.active.get(group, 0) + 1
            self.peak[group] = max(self.peak.get(group, 0),
                                   self.active[group])
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.active[group] >= expect,
                               timeout=10)
        time.sleep(0.3)  # a call past the limit would be counted now
        with self.cond:
            self.active[group] -= 1
        return self.peak[group]


@loom.remote(concurrency_groups={"io": 2, "compute": 3})
class Grouped(_Counting):
    def __init__(self):
        self._setup()
        self.gate = threading.Event()
        self.started = {"io": 0}

    @loom.method(concurrency_group="io")
    def io(self, expect):
        return self._enter("io", expect)

    @loom.method(concurrency_group="compute")
    def compute(self, expect):
        return self._enter("compute", expect)

    def plain(self, expect):
        return self._enter("default", expect)

    def peaks(self):
        with self.cond:
            return dict(self.peak)

    @loom.method(concurrency_group="io")
    def io_block(self):
        with self.cond:
            self.started["io"] += 1
        self.gate.wait(30)
        return "io done"

    @loom.method(concurrency_group="compute")
    def compute_ping(self):
        return "compute"

    def io_started(self):
        with self.cond:
            return self.started["io"]

    def release(self):
        self.gate.set()


def test_threaded_groups_run_up_to_their_limit(loom_cluster):
    a = Grouped.remote()
    io = [a.io.remote(2) for _ in range(6)]
    compute = [a.compute.remote(3) for _ in range(7)]
    plain = [a.plain.remote(1) for _ in range(3)]
    assert max(loom.get(io, timeout=60)) == 2
    assert max(loom.get(compute, timeout=60)) == 3
    assert max(loom.get(plain, timeout=60)) == 1  # default: max_concurrency 1
    assert loom.get(a.peaks.remote()) == {"io": 2, "compute": 3,
                                          "default": 1}
    loom.kill(a)


def test_a_full_group_does_not_block_the_others(loom_cluster):
    a = Grouped.remote()
    blocked = [a.io_block.remote() for _ in range(3)]
    wait_until(lambda: loom.get(a.io_started.remote()) == 2, timeout=30,
               what="two io calls to start")
    # io is full; compute and the default group still answer.
    assert loom.get(a.compute_ping.remote(), timeout=30) == "compute"
    time.sleep(0.3)
    assert loom.get(a.io_started.remote()) == 2  # the third io call waits
    loom.get(a.release.remote())
    assert loom.get(blocked, timeout=30) == ["io done"] * 3
    assert loom.get(a.io_started.remote()) == 3
    loom.kill(a)


def test_default_group_is_sized_by_max_concurrency(loom_cluster):
    a = Grouped.options(max_concurrency=3).remote()
    assert max(loom.get([a.plain.remote(3) for _ in range(7)],
                        timeout=60)) == 3
    loom.kill(a)


def test_call_options_pick_the_group(loom_cluster):
    a = Grouped.remote()
    # plain() is in the default group (1 at once); sent to "compute" it
    # runs 3 at once, and counts under its own name.
    refs = [a.plain.options(concurrency_group="compute").remote(3)
            for _ in range(6)]
    assert max(loom.get(refs, timeout=60)) == 3
    with pytest.raises(ValueError, match="no concurrency group"):
        a.plain.options(concurrency_group="nope")
    loom.kill(a)


def test_undeclared_group_is_refused(loom_cluster):
    @loom.remote(concurrency_groups={"io": 1})
    class Bad:
        @loom.method(concurrency_group="disk")
        def f(self):
            return 1

    with pytest.raises(ValueError, match="disk"):
        Bad.remote()
    with pytest.raises(ValueError):
        loom.remote(concurrency_groups={"io": 0})(Grouped._cls)
    with pytest.raises(TypeError):
        loom.remote(concurrency_groups=["io"])(Grouped._cls)


@loom.remote(concurrency_groups={"io": 2, "compute": 4})
class AsyncGrouped:
    def __init__(self):
        self.active = {}
        self.peak = {}
        self.gate = None

    async def _enter(self, group, expect):
        self.active[group] = self.active.get(group, 0) + 1
        self.peak[group] = max(self.peak.get(group, 0), self.active[group])
        for _ in range(1000):  # up to 10 s
            if self.active[group] >= expect:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        self.active[group] -= 1
        return self.peak[group]

    @loom.method(concurrency_group="io")
    async def io(self, expect):
        return await self._enter("io", expect)

    @loom.method(concurrency_group="compute")
    async def compute(self, expect):
        return await self._enter("compute", expect)

    async def plain(self, expect):
        return await self._enter("default", expect)

    async def io_block(self):
        if self.gate is None:
            self.gate = asyncio.Event()
        await self.gate.wait()
        return "released"

    @loom.method(concurrency_group="compute")
    async def release(self):
        if self.gate is None:
            self.gate = asyncio.Event()
        self.gate.set()


def test_async_groups_run_up_to_their_limit(loom_cluster):
    a = AsyncGrouped.options(max_concurrency=5).remote()
    io = [a.io.remote(2) for _ in range(6)]
    compute = [a.compute.remote(4) for _ in range(9)]
    plain = [a.plain.remote(5) for _ in range(8)]
    assert max(loom.get(io, timeout=60)) == 2
    assert max(loom.get(compute, timeout=60)) == 4
    assert max(loom.get(plain, timeout=60)) == 5
    loom.kill(a)


def test_async_full_group_does_not_block_the_others(loom_cluster):
    a = AsyncGrouped.remote()
    # io_block is in the default group here; sent to "io" it fills it.
    blocked = [a.io_block.options(concurrency_group="io").remote()
               for _ in range(2)]
    assert max(loom.get([a.compute.remote(4) for _ in range(4)],
                        timeout=60)) == 4
    ready, _ = loom.wait(blocked, timeout=0.5)
    assert ready == []
    loom.get(a.release.remote(), timeout=30)
    assert loom.get(blocked, timeout=30) == ["released"] * 2
    loom.kill(a)


@loom.remote
class Exiter:
    def __init__(self):
        self.n = 0

    def pid(self):
        return os.getpid()

    def incr(self):
        self.n += 1
        return self.n

    def leave(self):
        try:
            exit_actor()
        except Exception:  # exit_actor is not swallowed by this
            return "swallowed"
        return "not reached"


@loom.remote
class AsyncExiter:
    async def pid(self):
        return os.getpid()

    async def leave(self):
        await asyncio.sleep(0)
        exit_actor()


@pytest.mark.parametrize("cls", [Exiter, AsyncExiter])
def test_exit_actor(loom_cluster, cls):
    a = cls.options(max_restarts=2, max_task_retries=2).remote()
    pid = loom.get(a.pid.remote())
    with pytest.raises(ActorDiedError, match="exit_actor"):
        loom.get(a.leave.remote(), timeout=60)
    wait_until(lambda: process_gone(pid), timeout=30,
               what="the actor's process to exit")
    # Not restarted, despite max_restarts: later calls fail, saying why,
    # also once the head has it dead.
    with pytest.raises(ActorDiedError, match="exit_actor"):
        loom.get(a.pid.remote(), timeout=60)
    time.sleep(1)
    with pytest.raises(ActorDiedError, match="exit_actor"):
        loom.get(a.pid.remote(), timeout=60)


def test_a_killed_actor_says_so(loom_cluster):
    a = Exiter.remote()
    loom.get(a.pid.remote())
    loom.kill(a)
    with pytest.raises(ActorDiedError, match=r"killed by loom\.kill\(\)"):
        loom.get(a.pid.remote(), timeout=60)


def test_calls_queued_behind_exit_fail(loom_cluster):
    a = Exiter.remote()
    assert loom.get(a.incr.remote()) == 1
    leave = a.leave.remote()
    after = [a.incr.remote() for _ in range(3)]
    with pytest.raises(ActorDiedError):
        loom.get(leave, timeout=60)
    for r in after:
        with pytest.raises(ActorDiedError):
            loom.get(r, timeout=60)


@loom.remote(max_concurrency=2)
class BusyExiter:
    def __init__(self):
        self.entered = threading.Event()

    def slow(self):
        self.entered.set()
        time.sleep(1.5)
        return "finished"

    def leave(self):
        self.entered.wait(30)
        exit_actor()


@loom.remote
class AsyncBusyExiter:
    def __init__(self):
        self.entered = None

    async def slow(self):
        self.entered = True
        await asyncio.sleep(1.5)
        return "finished"

    async def leave(self):
        while not self.entered:
            await asyncio.sleep(0.01)
        exit_actor()


@pytest.mark.parametrize("cls", [BusyExiter, AsyncBusyExiter])
def test_calls_running_at_exit_finish(loom_cluster, cls):
    a = cls.options(max_restarts=1).remote()
    slow = a.slow.remote()
    with pytest.raises(ActorDiedError, match="exit_actor"):
        loom.get(a.leave.remote(), timeout=60)
    assert loom.get(slow, timeout=60) == "finished"
    with pytest.raises(ActorDiedError):
        loom.get(a.slow.remote(), timeout=60)


def test_exit_actor_outside_an_actor(loom_cluster):
    with pytest.raises(TypeError):
        exit_actor()

    @loom.remote
    def task():
        exit_actor()

    with pytest.raises(TaskError):
        loom.get(task.remote(), timeout=60)


@loom.remote
class Slow:
    def __init__(self, path):
        time.sleep(1)
        with open(path, "w") as f:
            f.write("constructed")


@loom.remote
class AsyncOne:
    async def f(self):
        return 1


def test_ready_without_a_user_method(loom_cluster, tmp_path):
    path = tmp_path / "ctor"
    a = Slow.remote(str(path))
    assert loom.get(a.__loom_ready__.remote(), timeout=60) is True
    assert path.read_text() == "constructed"  # the constructor ran first
    assert loom.get(a.__ray_ready__.remote(), timeout=60) is True
    b = AsyncOne.remote()
    assert loom.get(b.__ray_ready__.remote(), timeout=60) is True
    g = Grouped.remote()
    assert loom.get(g.__loom_ready__.remote(), timeout=60) is True
    for x in (a, b, g):
        loom.kill(x)


def test_ready_through_a_named_handle(loom_cluster):
    name = f"ready-{os.getpid()}-{time.time_ns()}"
    a = AsyncOne.options(name=name).remote()
    h = loom.get_actor(name)
    assert loom.get(h.__ray_ready__.remote(), timeout=60) is True
    loom.kill(a)
