# tests/python/test_actors.py
#
# Actors: state, call order, names and namespaces, kill, restarts after the
# actor's process is killed, handles passed around, async actors and
# threaded actors.

import asyncio
import os
import signal
import threading
import time
import uuid

import pytest

import loom
from loom.exceptions import ActorDiedError, TaskCancelledError
from conftest import process_gone, wait_until


@loom.remote
class Counter:
    def __init__(self, start=0):
        self.value = start

    def incr(self, by=1):
        self.value += by
        return self.value

    def get(self):
        return self.value

    def pid(self):
        return os.getpid()


@loom.remote
class Recorder:
    def __init__(self):
        self.seen = []

    def append(self, x):
        self.seen.append(x)

    def items(self):
        return list(self.seen)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_actor_keeps_state(loom_cluster):
    c = Counter.remote(10)
    try:
        assert loom.get(c.incr.remote()) == 11
        assert loom.get(c.incr.remote(5)) == 16
        assert loom.get(c.get.remote()) == 16
        # Two actors of one class do not share state.
        d = Counter.remote()
        assert loom.get(d.incr.remote()) == 1
        assert loom.get(c.get.remote()) == 16
        loom.kill(d)
    finally:
        loom.kill(c)


def test_calls_run_in_submission_order(loom_cluster):
    r = Recorder.remote()
    try:
        for i in range(300):
            r.append.remote(i)
        assert loom.get(r.items.remote(), timeout=60) == list(range(300))
    finally:
        loom.kill(r)


def test_named_actor_and_get_actor(loom_cluster):
    name = unique("counter")
    c = Counter.options(name=name).remote(100)
    try:
        loom.get(c.incr.remote())
        found = loom.get_actor(name)
        assert loom.get(found.incr.remote()) == 102
        assert loom.get(c.get.remote()) == 102
    finally:
        loom.kill(c)


def test_get_actor_raises_value_error_for_unknown_names(loom_cluster):
    with pytest.raises(ValueError):
        loom.get_actor(unique("no-such-actor"))


def test_namespaces_separate_names(loom_cluster):
    name = unique("shared-name")
    a = Counter.options(name=name, namespace="ns_a").remote(1)
    b = Counter.options(name=name, namespace="ns_b").remote(2)
    try:
        assert loom.get(loom.get_actor(name, namespace="ns_a").get.remote()) == 1
        assert loom.get(loom.get_actor(name, namespace="ns_b").get.remote()) == 2
        with pytest.raises(ValueError):
            loom.get_actor(name, namespace="ns_c")
    finally:
        loom.kill(a)
        loom.kill(b)


def test_init_namespace_is_the_default_for_names(new_cluster):
    new_cluster(num_cpus=2, namespace="team")
    c = Counter.options(name="svc").remote(7)
    try:
        assert loom.get(loom.get_actor("svc").get.remote()) == 7
        assert loom.get(loom.get_actor("svc", namespace="team").get.remote()) == 7
        with pytest.raises(ValueError):
            loom.get_actor("svc", namespace="other-team")
    finally:
        loom.kill(c)


def test_get_if_exists_returns_the_existing_actor(loom_cluster):
    name = unique("singleton")
    first = Counter.options(name=name, get_if_exists=True).remote(0)
    try:
        loom.get(first.incr.remote())
        second = Counter.options(name=name, get_if_exists=True).remote(0)
        assert loom.get(second.incr.remote()) == 2
        assert loom.get(second.pid.remote()) == loom.get(first.pid.remote())
    finally:
        loom.kill(first)


def test_taken_name_is_an_error(loom_cluster):
    name = unique("taken")
    first = Counter.options(name=name).remote(5)
    try:
        loom.get(first.get.remote())
        # As in Ray: .remote() itself raises ValueError.
        with pytest.raises(ValueError, match=f"'{name}' is taken"):
            Counter.options(name=name).remote(0)
        assert loom.get(loom.get_actor(name).get.remote()) == 5
    finally:
        loom.kill(first)


@loom.remote
class CountedCounter:
    """A counter that counts its constructions (restarts) in a directory."""

    def __init__(self, marker_dir):
        with open(os.path.join(marker_dir, uuid.uuid4().hex), "w"):
            pass
        self.value = 0

    def incr(self):
        self.value += 1
        return self.value

    def pid(self):
        return os.getpid()


def test_kill(loom_cluster, tmp_path):
    name = unique("doomed")
    c = CountedCounter.options(name=name, max_restarts=3).remote(str(tmp_path))
    pid = loom.get(c.pid.remote())
    loom.kill(c)  # no_restart=True by default: max_restarts does not apply
    wait_until(lambda: process_gone(pid), timeout=30, what="the actor's process to exit")
    with pytest.raises(ActorDiedError):
        loom.get(c.incr.remote(), timeout=60)

    def name_is_free():
        try:
            loom.get_actor(name)
            return False
        except ValueError:
            return True

    # The head frees the name once the actor is DEAD, a final state: a
    # restarting actor keeps it. No restart came, and none will.
    wait_until(name_is_free, timeout=30, what="the name to be released")
    with pytest.raises(ActorDiedError):
        loom.get(c.incr.remote(), timeout=60)
    assert len(os.listdir(tmp_path)) == 1  # constructed once, never again
    again = Counter.options(name=name).remote(50)
    try:
        assert loom.get(loom.get_actor(name).get.remote()) == 50
    finally:
        loom.kill(again)


def test_kill_without_no_restart_restarts(loom_cluster):
    c = Counter.options(max_restarts=1, max_task_retries=3).remote(3)
    try:
        loom.get(c.incr.remote())
        old_pid = loom.get(c.pid.remote())
        loom.kill(c, no_restart=False)
        # kill may return before the process is gone: calls reach the new
        # instance once it is.
        wait_until(lambda: loom.get(c.pid.remote(), timeout=60) != old_pid,
                   timeout=60, what="the actor to restart")
        assert loom.get(c.get.remote(), timeout=60) == 3  # the constructor ran again
    finally:
        loom.kill(c)


def test_actor_dies_when_its_process_is_killed(loom_cluster):
    c = Counter.remote()
    pid = loom.get(c.pid.remote())
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ActorDiedError):
        loom.get(c.incr.remote(), timeout=60)


def test_max_restarts_after_sigkill(loom_cluster):
    c = Counter.options(max_restarts=1, max_task_retries=3).remote(5)
    try:
        assert loom.get(c.incr.remote()) == 6
        first_pid = loom.get(c.pid.remote())
        os.kill(first_pid, signal.SIGKILL)

        # Restarted: a new process, state from the constructor again.
        second_pid = loom.get(c.pid.remote(), timeout=60)
        assert second_pid != first_pid
        assert loom.get(c.get.remote(), timeout=60) == 5
        assert loom.get(c.incr.remote(), timeout=60) == 6

        # The one restart is used up: the next death is final.
        os.kill(second_pid, signal.SIGKILL)
        with pytest.raises(ActorDiedError):
            loom.get(c.incr.remote(), timeout=60)
    finally:
        loom.kill(c)


@loom.remote
def bump(counter, times):
    return loom.get([counter.incr.remote() for _ in range(times)])[-1]


@loom.remote
def bump_in(holder, times):
    return loom.get(bump.remote(holder["counter"], times))


@loom.remote
class Relay:
    def __init__(self, counter):
        self.counter = counter

    def bump(self, times):
        for _ in range(times):
            last = loom.get(self.counter.incr.remote())
        return last

    def handle(self):
        return self.counter


def test_handles_passed_to_tasks_and_actors(loom_cluster):
    c = Counter.remote()
    relay = Relay.remote(c)
    try:
        assert loom.get(bump.remote(c, 5), timeout=60) == 5
        assert loom.get(relay.bump.remote(3), timeout=60) == 8
        # A handle returned from an actor works in the driver.
        back = loom.get(relay.handle.remote())
        assert loom.get(back.incr.remote()) == 9
        # A handle inside a container.
        assert loom.get(bump_in.remote({"counter": c}, 1), timeout=60) == 10
    finally:
        loom.kill(relay)
        loom.kill(c)


# --- async actors -------------------------------------------------------------


@loom.remote
def square(x):
    return x * x


@loom.remote
def slow_value(x, delay):
    time.sleep(delay)
    return x


@loom.remote
class AsyncWorker:
    def __init__(self):
        self.active = 0
        self.max_active = 0
        self.event = None
        self.waiters = 0

    async def nap(self, seconds):
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.active -= 1
        return seconds

    async def peak(self):
        return self.max_active

    async def wait_for_release(self):
        if self.event is None:
            self.event = asyncio.Event()
        self.waiters += 1
        await asyncio.wait_for(self.event.wait(), timeout=60)
        return "released"

    async def release(self):
        if self.event is None:
            self.event = asyncio.Event()
        self.event.set()

    async def sum_refs(self, holder):
        # Refs nested in an argument stay refs; awaiting one gives its value.
        return sum([await r for r in holder["refs"]])

    async def gather_refs(self, holder):
        return sum(await asyncio.gather(*holder["refs"]))

    async def submit_and_await(self, x):
        return await square.remote(x)

    async def loop_is_running(self):
        return asyncio.get_running_loop().is_running()

    async def waiting(self):
        return self.waiters

    async def hold(self, started):
        self.cancelled = getattr(self, "cancelled", 0)
        with open(started, "w"):
            pass
        try:
            await asyncio.sleep(120)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return "not cancelled"

    async def cancelled_count(self):
        return getattr(self, "cancelled", 0)


def test_async_actor_runs_calls_concurrently(loom_cluster):
    a = AsyncWorker.options(max_concurrency=10).remote()
    try:
        loom.get(a.peak.remote())  # started
        start = time.monotonic()
        assert loom.get([a.nap.remote(1.0) for _ in range(10)], timeout=60) == [1.0] * 10
        elapsed = time.monotonic() - start
        assert elapsed < 5.0, f"10 concurrent 1 s sleeps took {elapsed:.1f} s"
        assert loom.get(a.peak.remote()) == 10
    finally:
        loom.kill(a)


def test_async_actor_respects_max_concurrency(loom_cluster):
    a = AsyncWorker.options(max_concurrency=2).remote()
    try:
        loom.get(a.peak.remote())
        start = time.monotonic()
        loom.get([a.nap.remote(0.5) for _ in range(6)], timeout=60)
        assert time.monotonic() - start >= 1.4  # three rounds of two
        assert loom.get(a.peak.remote()) == 2
    finally:
        loom.kill(a)


def test_async_calls_interleave_on_the_event_loop(loom_cluster):
    a = AsyncWorker.options(max_concurrency=4).remote()
    try:
        assert loom.get(a.loop_is_running.remote()) is True
        waiting = [a.wait_for_release.remote() for _ in range(3)]
        # All three wait on the loop at once; none can end before release.
        wait_until(lambda: loom.get(a.waiting.remote()) == 3, timeout=30,
                   what="three calls waiting together")
        assert loom.wait(waiting, num_returns=3, timeout=0)[0] == []
        a.release.remote()
        assert loom.get(waiting, timeout=60) == ["released"] * 3
    finally:
        loom.kill(a)


def test_await_ref_inside_async_methods(loom_cluster):
    a = AsyncWorker.options(max_concurrency=4).remote()
    try:
        refs = [slow_value.remote(i, 0.2) for i in range(5)] + [loom.put(100)]
        assert loom.get(a.sum_refs.remote({"refs": refs}), timeout=60) == 110
        assert loom.get(a.gather_refs.remote({"refs": refs}), timeout=60) == 110
        assert loom.get(a.submit_and_await.remote(12), timeout=60) == 144
    finally:
        loom.kill(a)


def test_cancel_an_async_actor_call(loom_cluster, tmp_path):
    a = AsyncWorker.options(max_concurrency=4).remote()
    try:
        started = tmp_path / "started"
        held = a.hold.remote(str(started))
        wait_until(started.exists, timeout=60, what="the call to start")
        start = time.monotonic()
        loom.cancel(held)
        with pytest.raises(TaskCancelledError):
            loom.get(held, timeout=60)
        assert time.monotonic() - start < 30
        # The coroutine itself was cancelled, and the actor serves on.
        assert loom.get(a.cancelled_count.remote(), timeout=60) == 1
        assert loom.get(a.nap.remote(0), timeout=60) == 0
        # force=True would kill the actor: refused for actor calls.
        other_started = tmp_path / "other"
        other = a.hold.remote(str(other_started))
        wait_until(other_started.exists, timeout=60, what="the call to start")
        with pytest.raises(ValueError, match="force=True"):
            loom.cancel(other, force=True)
        loom.cancel(other)
        with pytest.raises(TaskCancelledError):
            loom.get(other, timeout=60)
    finally:
        loom.kill(a)


# --- threaded actors ----------------------------------------------------------


@loom.remote
class Threaded:
    def __init__(self, parties):
        self.barrier = threading.Barrier(parties, timeout=30)
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0

    def meet(self):
        return self.barrier.wait()  # raises BrokenBarrierError unless all meet

    def work(self, seconds):
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(seconds)
        with self.lock:
            self.active -= 1
        return threading.get_ident()

    def peak(self):
        return self.max_active


def test_threaded_actor_runs_max_concurrency_calls_at_once(loom_cluster):
    t = Threaded.options(max_concurrency=4).remote(4)
    try:
        # Four calls meet at a barrier of four: only possible if they overlap.
        assert sorted(loom.get([t.meet.remote() for _ in range(4)], timeout=60)) == [0, 1, 2, 3]
        idents = loom.get([t.work.remote(0.2) for _ in range(12)], timeout=60)
        assert len(set(idents)) > 1
        assert loom.get(t.peak.remote()) == 4
    finally:
        loom.kill(t)


def test_default_actor_runs_one_call_at_a_time(loom_cluster):
    t = Threaded.remote(1)
    try:
        loom.get([t.work.remote(0.05) for _ in range(20)], timeout=60)
        assert loom.get(t.peak.remote()) == 1
    finally:
        loom.kill(t)


# --- lifetime ---------------------------------------------------------------


def test_detached_actor_outlives_its_driver(head_node):
    name = unique("detached")
    create = f"""
        import loom
        loom.init(address="auto", namespace="lifetimes")

        @loom.remote
        class Counter:
            def __init__(self):
                self.value = 0
            def incr(self):
                self.value += 1
                return self.value

        keep = Counter.options(name="{name}", lifetime="detached").remote()
        owned = Counter.options(name="{name}-owned").remote()
        print("VALUES", loom.get(keep.incr.remote()), loom.get(owned.incr.remote()))
        loom.shutdown()
    """
    code, out, err = head_node.run_driver(create)
    assert code == 0, err
    assert "VALUES 1 1" in out

    check = f"""
        import time, loom
        loom.init(address="auto", namespace="lifetimes")
        keep = loom.get_actor("{name}")
        print("DETACHED", loom.get(keep.incr.remote()))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                loom.get_actor("{name}-owned")
            except ValueError:
                print("OWNED GONE")
                break
            time.sleep(0.2)
        loom.kill(keep)
        loom.shutdown()
    """
    code, out, err = head_node.run_driver(check)
    assert code == 0, err
    assert "DETACHED 2" in out  # the state survived the first driver
    assert "OWNED GONE" in out  # a non-detached actor died with its driver
