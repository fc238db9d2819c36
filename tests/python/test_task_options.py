# tests/python/test_task_options.py
#
# Task and actor options Ray programs use: max_calls (a worker is replaced
# after running a function that many times), memory (a resource request in
# bytes), wait()'s argument rules, and cancelling actor calls.

import os
import time

import pytest

import loom
from loom.cluster_utils import Cluster
from loom.exceptions import InfeasibleError, TaskCancelledError
from conftest import touch, wait_for_file, wait_until

MiB = 1024 ** 2
GiB = 1024 ** 3


@loom.remote
def pid_and(x):
    return x, os.getpid()


@loom.remote
def where():
    return loom.get_runtime_context().get_node_id()


@loom.remote
def nap(seconds):
    time.sleep(seconds)
    return seconds


# --- max_calls ----------------------------------------------------------------


def test_max_calls_replaces_the_worker(loom_cluster):
    f = pid_and.options(max_calls=2)
    results = loom.get([f.remote(i) for i in range(6)], timeout=60)
    assert [x for x, _ in results] == list(range(6))
    pids = [p for _, p in results]
    assert len(set(pids)) >= 3
    # No process ran the function more than twice.
    assert max(pids.count(p) for p in pids) <= 2
    # One call after another: the same holds.
    pids = [loom.get(f.remote(i), timeout=60)[1] for i in range(6)]
    assert len(set(pids)) >= 3
    assert max(pids.count(p) for p in pids) <= 2


def test_max_calls_one_needs_no_retries(loom_cluster):
    # A worker stopped after its call is not a crash: tasks without
    # retries still succeed, each in a process of its own.
    f = pid_and.options(max_calls=1, max_retries=0)
    results = loom.get([f.remote(i) for i in range(5)], timeout=60)
    assert [x for x, _ in results] == list(range(5))
    assert len({p for _, p in results}) == 5


def test_max_calls_in_the_decorator_and_workers_exit(loom_cluster):
    @loom.remote(max_calls=1)
    def once(x):
        return x * 2, os.getpid()

    first_value, first_pid = loom.get(once.remote(1), timeout=60)
    second_value, second_pid = loom.get(once.remote(2), timeout=60)
    assert (first_value, second_value) == (2, 4)
    assert first_pid != second_pid
    # The process that ran the call is gone, not merely idle.
    wait_until(lambda: not os.path.exists(f"/proc/{first_pid}") or
               open(f"/proc/{first_pid}/stat").read().split()[2] == "Z",
               timeout=30, what="the used-up worker to exit")
    # Without max_calls, functions run as before.
    assert loom.get(pid_and.remote(3), timeout=60)[0] == 3


def test_max_calls_is_validated():
    with pytest.raises(ValueError):
        pid_and.options(max_calls=-1)
    with pytest.raises(TypeError):
        pid_and.options(max_calls="2")
    with pytest.raises(TypeError):
        pid_and.options(max_calls=1.5)

    class A:
        pass
    with pytest.raises(TypeError, match="max_calls"):
        loom.remote(max_calls=1)(A)


# --- memory -------------------------------------------------------------------


def test_nodes_offer_memory_and_tasks_and_actors_request_it(loom_cluster):
    total = loom.cluster_resources()
    assert total.get("memory", 0) > 500 * MiB

    @loom.remote(memory=500 * MiB)
    def needs_memory():
        return "ran"

    @loom.remote(memory=500 * MiB)
    class Holder:
        def ping(self):
            return "pong"

    assert loom.get(needs_memory.remote(), timeout=60) == "ran"
    h = Holder.remote()
    try:
        assert loom.get(h.ping.remote(), timeout=60) == "pong"
        # The actor holds its memory while it lives.
        wait_until(lambda: loom.available_resources().get("memory", 0) <=
                   total["memory"] - 500 * MiB + 1, timeout=30,
                   what="the actor's memory to be taken")
    finally:
        loom.kill(h)
    wait_until(lambda: loom.available_resources().get("memory") ==
               total["memory"], timeout=30,
               what="the actor's memory to be given back")


def test_memory_beyond_every_node_is_infeasible(loom_cluster):
    too_much = int(loom.cluster_resources()["memory"]) * 4
    start = time.monotonic()
    with pytest.raises(InfeasibleError, match="memory"):
        loom.get(nap.options(memory=too_much).remote(0), timeout=30)
    assert time.monotonic() - start < 30

    @loom.remote(memory=too_much)
    class Big:
        def ping(self):
            return "pong"

    # An actor no node can hold waits for one (as in Ray, where a node may
    # yet join), as actors needing other resources do.
    big = Big.remote()
    with pytest.raises(loom.exceptions.GetTimeoutError):
        loom.get(big.ping.remote(), timeout=2)
    loom.kill(big)
    # Nothing was taken: ordinary work goes on.
    assert loom.get(nap.remote(0), timeout=60) == 0


def test_memory_is_validated():
    with pytest.raises(ValueError):
        nap.options(memory=-1)
    with pytest.raises(TypeError):
        nap.options(memory="1GB")
    with pytest.raises(ValueError, match="memory"):
        nap.options(resources={"memory": 100})


@pytest.mark.loom_timeout(180)
def test_memory_places_tasks_and_actors_and_limits_concurrency(no_cluster):
    with Cluster(head_node_args={"num_cpus": 4, "memory": 1 * GiB}) as c:
        big = c.add_node(num_cpus=4, memory=3 * GiB)
        c.wait_for_nodes(timeout=30)
        c.connect()
        head = c.head_node.node_id
        nodes = {n["NodeID"]: n for n in loom.nodes()}
        assert nodes[head]["Resources"]["memory"] == 1 * GiB
        assert nodes[big.node_id]["Resources"]["memory"] == 3 * GiB

        # Only the big node has 2 GiB.
        placed = [where.options(memory=2 * GiB).remote() for _ in range(3)]
        assert loom.get(placed, timeout=60) == [big.node_id] * 3

        @loom.remote(memory=2 * GiB, num_cpus=0)
        class OnBig:
            def node(self):
                return loom.get_runtime_context().get_node_id()

        a = OnBig.remote()
        assert loom.get(a.node.remote(), timeout=60) == big.node_id
        loom.kill(a)

        # 600 MiB tasks pinned to the head (1 GiB): one at a time, though
        # it has 4 CPUs.
        @loom.remote(memory=600 * MiB)
        def interval(node_pinned):
            start = time.time()
            time.sleep(0.5)
            return start, time.time(), \
                loom.get_runtime_context().get_node_id()

        from loom.util.scheduling_strategies import \
            NodeAffinitySchedulingStrategy
        on_head = interval.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(head, False))
        spans = loom.get([on_head.remote(True) for _ in range(3)],
                         timeout=90)
        assert {n for _, _, n in spans} == {head}
        spans.sort()
        for (_, end, _), (start, _, _) in zip(spans, spans[1:]):
            assert start >= end - 0.05


# --- wait's arguments ---------------------------------------------------------


def test_wait_argument_rules(loom_cluster):
    a, b = nap.remote(0), nap.remote(0)
    with pytest.raises(ValueError):
        loom.wait([a, b], num_returns=0)
    with pytest.raises(ValueError):
        loom.wait([a, b], num_returns=3)
    with pytest.raises(ValueError):
        loom.wait([a, a])
    with pytest.raises(TypeError):
        loom.wait(a)
    with pytest.raises(TypeError):
        loom.wait([a, "not a ref"])
    with pytest.raises(TypeError):
        loom.wait([a], num_returns="1")
    with pytest.raises(ValueError):
        loom.wait([a], timeout=-1)
    assert loom.wait([]) == ([], [])
    # fetch_local is accepted; timeout=None waits for what was asked.
    ready, rest = loom.wait([a, b], num_returns=2, timeout=None,
                            fetch_local=False)
    assert ready == [a, b] and rest == []
    slow = nap.remote(0.5)
    ready, rest = loom.wait([slow], timeout=None)
    assert ready == [slow] and rest == []
    assert loom.get([a, b, slow], timeout=60) == [0, 0, 0.5]


# --- cancelling actor calls ---------------------------------------------------


@loom.remote
class Gated:
    def __init__(self):
        self.ran = []

    def hold(self, gate, started):
        touch(started)
        wait_for_file(gate)
        return "held"

    def mark(self, x):
        self.ran.append(x)
        return x

    def marks(self):
        return self.ran


def test_cancel_a_queued_actor_call(loom_cluster, tmp_path):
    a = Gated.remote()
    gate, started = str(tmp_path / "gate"), str(tmp_path / "started")
    try:
        held = a.hold.remote(gate, started)
        wait_until(lambda: os.path.exists(started), timeout=60,
                   what="the first call to start")
        queued = a.mark.remote(1)
        after = a.mark.remote(2)
        loom.cancel(queued)
        with pytest.raises(TaskCancelledError):
            loom.get(queued, timeout=30)
        touch(gate)
        assert loom.get(held, timeout=60) == "held"
        assert loom.get(after, timeout=60) == 2
        # The cancelled call never ran; the actor serves on, in order.
        assert loom.get(a.marks.remote(), timeout=60) == [2]
    finally:
        touch(gate)
        loom.kill(a)


@loom.remote
def child_spins(started, cancelled):
    touch(started)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.05)
    except KeyboardInterrupt:
        touch(cancelled)
        raise
    return "child finished"


@loom.remote
def parent_waits(started, cancelled):
    return loom.get(child_spins.remote(started, cancelled))


@loom.remote
def child_waits(started, gate, cancelled, finished):
    touch(started)
    try:
        wait_for_file(gate, timeout=60)
    except KeyboardInterrupt:
        touch(cancelled)
        raise
    touch(finished)
    return "child finished"


@loom.remote
def parent_of_waiting_child(*paths):
    return loom.get(child_waits.remote(*paths))


def test_cancel_not_recursive_leaves_the_children(loom_cluster, tmp_path):
    started, gate, cancelled, finished = (
        str(tmp_path / n) for n in ("started", "gate", "cancelled",
                                    "finished"))
    parent = parent_of_waiting_child.remote(started, gate, cancelled,
                                            finished)
    wait_until(lambda: os.path.exists(started), timeout=60,
               what="the child task to start")
    loom.cancel(parent, recursive=False)
    # The parent, blocked in its get, is interrupted once the get returns:
    # when its child, left running, finishes.
    touch(gate)
    with pytest.raises(TaskCancelledError):
        loom.get(parent, timeout=60)
    wait_until(lambda: os.path.exists(finished), timeout=60,
               what="the child task to finish")
    assert not os.path.exists(cancelled)


def test_cancel_is_recursive(loom_cluster, tmp_path):
    started, cancelled = str(tmp_path / "started"), str(tmp_path / "cancelled")
    parent = parent_waits.remote(started, cancelled)
    wait_until(lambda: os.path.exists(started), timeout=60,
               what="the child task to start")
    loom.cancel(parent)
    with pytest.raises(TaskCancelledError):
        loom.get(parent, timeout=60)
    # The child the parent submitted was interrupted too.
    wait_until(lambda: os.path.exists(cancelled), timeout=30,
               what="the child task to be cancelled")
    assert loom.get(nap.remote(0), timeout=60) == 0


@loom.remote
def cancel_borrowed(refs):
    # The ref is borrowed here: the driver owns it, and cancels it for us.
    loom.cancel(refs[0])
    return "asked"


def test_cancel_of_a_ref_another_worker_owns(loom_cluster, tmp_path):
    started, gate, cancelled, finished = (
        str(tmp_path / n) for n in ("started", "gate", "cancelled",
                                    "finished"))
    running = child_waits.remote(started, gate, cancelled, finished)
    wait_until(lambda: os.path.exists(started), timeout=60,
               what="the task to start")
    # Inside a list, the ref reaches the task unresolved.
    assert loom.get(cancel_borrowed.remote([running]), timeout=60) == "asked"
    with pytest.raises(TaskCancelledError):
        loom.get(running, timeout=60)
    wait_until(lambda: os.path.exists(cancelled), timeout=30,
               what="the task to be interrupted")
    assert not os.path.exists(finished)
