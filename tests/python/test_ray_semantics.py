# tests/python/test_ray_semantics.py
#
# Behaviour Ray programs rely on, written from Ray's documentation: plain
# methods of an async actor run on its event loop (the "signal actor"),
# get() of a list raises the first error at once, a nested task's error
# keeps its type two tasks up, tasks and actors inherit the driver's
# namespace, and a dropped handle lets the calls already sent finish.

import asyncio
import os
import threading
import time
import uuid

import pytest

import loom
from loom.exceptions import ActorDiedError, TaskError
from conftest import process_gone, wait_until


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- async actors: plain methods on the event loop --------------------------


@loom.remote
class SignalActor:
    def __init__(self):
        self.ready_event = asyncio.Event()

    def send(self):
        self.ready_event.set()

    async def wait(self):
        await self.ready_event.wait()
        return "signalled"

    def loop_thread(self):
        # A plain method: it runs on the loop, so a running loop is found.
        return threading.get_ident(), asyncio.get_running_loop() is not None

    async def async_thread(self):
        return threading.get_ident()


@loom.remote
def wait_on(signal):
    return loom.get(signal.wait.remote())


def test_sync_send_wakes_async_wait_of_a_signal_actor(loom_cluster):
    signal = SignalActor.remote()
    try:
        waiter = wait_on.remote(signal)
        direct = signal.wait.remote()
        # Neither can finish before send.
        ready, _ = loom.wait([waiter, direct], num_returns=2, timeout=1.0)
        assert ready == []
        loom.get(signal.send.remote(), timeout=30)
        assert loom.get([waiter, direct], timeout=30) == ["signalled"] * 2
    finally:
        loom.kill(signal)


def test_plain_methods_of_an_async_actor_run_on_its_loop_thread(loom_cluster):
    signal = SignalActor.remote()
    try:
        ident, has_loop = loom.get(signal.loop_thread.remote(), timeout=30)
        assert has_loop
        assert ident == loom.get(signal.async_thread.remote(), timeout=30)
    finally:
        loom.kill(signal)


@loom.remote
class Mixed:
    def __init__(self):
        self.active = 0
        self.peak = 0

    async def nap(self, seconds):
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.active -= 1
        return seconds

    def count(self):
        # Runs between coroutines on the loop: sees a consistent count.
        return self.active

    def max_active(self):
        return self.peak


def test_async_actor_with_plain_methods_keeps_max_concurrency(loom_cluster):
    a = Mixed.options(max_concurrency=2).remote()
    try:
        loom.get(a.max_active.remote(), timeout=30)
        start = time.monotonic()
        naps = [a.nap.remote(0.5) for _ in range(6)]
        counts = [a.count.remote() for _ in range(4)]
        assert loom.get(naps, timeout=60) == [0.5] * 6
        assert time.monotonic() - start >= 1.4  # three rounds of two
        assert all(0 <= c <= 2 for c in loom.get(counts, timeout=30))
        assert loom.get(a.max_active.remote(), timeout=30) == 2
    finally:
        loom.kill(a)


def test_async_actor_runs_many_coroutines_beside_plain_methods(loom_cluster):
    a = Mixed.options(max_concurrency=10).remote()
    try:
        loom.get(a.max_active.remote(), timeout=30)
        start = time.monotonic()
        naps = [a.nap.remote(1.0) for _ in range(10)]
        loom.get(a.count.remote(), timeout=30)
        assert loom.get(naps, timeout=60) == [1.0] * 10
        assert time.monotonic() - start < 5.0
        assert loom.get(a.max_active.remote(), timeout=30) == 10
    finally:
        loom.kill(a)


# --- get of a list: the first error at once ----------------------------------


@loom.remote
def fail_now():
    raise ValueError("failed at once")


@loom.remote
def sleep_for(seconds):
    time.sleep(seconds)
    return seconds


def test_get_of_a_list_raises_the_first_error_without_waiting(loom_cluster):
    slow = sleep_for.remote(30)
    failed = fail_now.remote()
    for order in ([failed, slow], [slow, failed]):
        start = time.monotonic()
        with pytest.raises(ValueError, match="failed at once"):
            loom.get(order, timeout=60)
        assert time.monotonic() - start < 5.0
    loom.cancel(slow, force=True)


@loom.remote
def get_both(refs):
    return loom.get(refs["refs"])


def test_get_inside_a_task_raises_the_first_error_without_waiting(loom_cluster):
    slow = sleep_for.remote(30)
    start = time.monotonic()
    with pytest.raises(ValueError, match="failed at once"):
        loom.get(get_both.remote({"refs": [slow, fail_now.remote()]}),
                 timeout=60)
    assert time.monotonic() - start < 10.0
    loom.cancel(slow, force=True)


# --- nested errors keep their type --------------------------------------------


@loom.remote
def divide(a, b):
    return a / b


@loom.remote
def call_divide(a, b):
    return loom.get(divide.remote(a, b))


@loom.remote
def call_call_divide(a, b):
    return loom.get(call_divide.remote(a, b))


class CustomError(Exception):
    def __init__(self, code):
        super().__init__(f"code {code}")
        self.code = code


@loom.remote
def raise_custom(code):
    raise CustomError(code)


@loom.remote
def call_raise_custom(code):
    return loom.get(raise_custom.remote(code))


@loom.remote
class Middle:
    def relay(self, a, b):
        return loom.get(divide.remote(a, b))


def test_nested_error_keeps_its_type_two_tasks_up(loom_cluster):
    with pytest.raises(ZeroDivisionError) as caught:
        loom.get(call_divide.remote(1, 0))
    assert isinstance(caught.value, TaskError)
    assert isinstance(caught.value.cause, ZeroDivisionError)
    assert "division by zero" in str(caught.value)
    # Three levels, and through an actor.
    with pytest.raises(ZeroDivisionError):
        loom.get(call_call_divide.remote(1, 0))
    m = Middle.remote()
    try:
        with pytest.raises(ZeroDivisionError):
            loom.get(m.relay.remote(1, 0))
    finally:
        loom.kill(m)


def test_nested_user_error_keeps_its_type_and_attributes(loom_cluster):
    with pytest.raises(CustomError) as caught:
        loom.get(call_raise_custom.remote(7))
    assert isinstance(caught.value, TaskError)
    assert caught.value.code == 7


# --- namespaces: tasks and actors inherit the driver's -----------------------


@loom.remote
class Named:
    def hello(self):
        return "hello"


@loom.remote
def find_and_call(name):
    return loom.get(loom.get_actor(name).hello.remote())


@loom.remote
def current_namespace():
    return loom.get_runtime_context().namespace


@loom.remote
class Finder:
    def find(self, name):
        return loom.get(loom.get_actor(name).hello.remote())

    def create(self, name):
        Named.options(name=name, lifetime="detached").remote()
        return True


def _check_inherits(name):
    a = Named.options(name=name).remote()
    try:
        assert loom.get(find_and_call.remote(name), timeout=60) == "hello"
        f = Finder.remote()
        try:
            assert loom.get(f.find.remote(name), timeout=60) == "hello"
            # An actor created by an actor lands in the job's namespace too.
            inner = name + "-inner"
            loom.get(f.create.remote(inner), timeout=60)
            created = wait_until(
                lambda: _try_get_actor(inner), timeout=30,
                what="the actor created inside an actor")
            assert loom.get(created.hello.remote(), timeout=60) == "hello"
            loom.kill(created)
        finally:
            loom.kill(f)
    finally:
        loom.kill(a)


def _try_get_actor(name):
    try:
        return loom.get_actor(name)
    except ValueError:
        return None


def test_tasks_and_actors_inherit_the_default_namespace(loom_cluster):
    _check_inherits(unique("default-ns"))


def test_tasks_and_actors_inherit_a_named_namespace(new_cluster):
    new_cluster(num_cpus=4, namespace="team-x")
    assert loom.get(current_namespace.remote(), timeout=60) == "team-x"
    name = unique("named-ns")
    _check_inherits(name)
    # The actor lives in team-x, not in the default namespace.
    a = Named.options(name=name).remote()
    try:
        loom.get(a.hello.remote(), timeout=60)
        assert loom.get_actor(name, namespace="team-x") == a
        with pytest.raises(ValueError):
            loom.get_actor(name, namespace="")
    finally:
        loom.kill(a)


# --- a dropped handle: the calls already sent finish --------------------------


@loom.remote
class Slow:
    def slow(self, seconds):
        time.sleep(seconds)
        return "done"

    def pid(self):
        return os.getpid()


def test_dropped_handle_lets_calls_already_sent_finish(loom_cluster):
    a = Slow.remote()
    pid = loom.get(a.pid.remote(), timeout=60)
    refs = [a.slow.remote(1.0) for _ in range(3)]
    del a
    assert loom.get(refs, timeout=60) == ["done"] * 3
    # Then the actor exits.
    wait_until(lambda: process_gone(pid), timeout=30,
               what="the actor to exit after its last call")


def test_dropped_handle_before_the_actor_is_up(loom_cluster):
    a = Slow.remote()
    r = a.slow.remote(0.5)
    del a
    assert loom.get(r, timeout=60) == "done"


def test_actor_with_no_calls_exits_when_its_handle_is_dropped(loom_cluster):
    a = Slow.remote()
    pid = loom.get(a.pid.remote(), timeout=60)
    del a
    wait_until(lambda: process_gone(pid), timeout=30,
               what="the actor to exit once its handle is gone")


def test_kill_still_fails_calls_in_flight(loom_cluster):
    a = Slow.remote()
    loom.get(a.pid.remote(), timeout=60)
    r = a.slow.remote(30)
    time.sleep(0.5)
    loom.kill(a)
    with pytest.raises(ActorDiedError):
        loom.get(r, timeout=60)
