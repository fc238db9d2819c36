# tests/python/test_failures.py
#
# Node failures as docs/operations.md promises them: tasks running on a
# raylet killed with -9 are retried elsewhere and their results arrive; a
# driver whose own raylet died gets WorkerCrashedError for work it cannot
# lease, in bounded time; objects lost with a node are rebuilt from lineage
# or fail with ObjectLostError saying why.

import os
import shutil
import signal
import time
import uuid

import pytest

import loom
from loom.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from conftest import (process_gone, python_fork_servers, touch, wait_for_file,
                      wait_until)
from test_scheduling import four_nodes  # noqa: F401 - the fixture

# The head declares a silent node dead after this (loom start's default).
NODE_TIMEOUT_S = 5.0


@loom.remote
def run_until_gate(index, started_dir, gate):
    node = loom.get_runtime_context().get_node_id()
    touch(os.path.join(started_dir,
                       f"{index}-{node}-{os.getpid()}-{uuid.uuid4().hex}"))
    wait_for_file(gate)
    return node


def starts(started_dir, pids=False):
    """[(task index, node)] for each time a task started; with pids,
    [(task index, node, worker pid)]."""
    out = []
    for name in os.listdir(started_dir):
        index, node, pid = name.split("-")[:3]
        out.append((int(index), node, int(pid)) if pids else (int(index), node))
    return out


@pytest.mark.loom_timeout(180)
def test_tasks_on_a_killed_raylet_are_retried(four_nodes, tmp_path):
    started, gate = tmp_path / "started", str(tmp_path / "gate")
    started.mkdir()
    cpus = int(loom.cluster_resources()["CPU"])
    refs = [run_until_gate.remote(i, str(started), gate) for i in range(cpus)]
    driver_node = loom.get_runtime_context().get_node_id()
    try:
        # Some run on other nodes than the driver's (spilled back).
        victim = wait_until(
            lambda: next((n for _, n in starts(started) if n != driver_node), None),
            timeout=60, what="a task on another node")
        pid = next(n["Pid"] for n in loom.nodes() if n["NodeID"] == victim)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: process_gone(pid), timeout=30, what="the raylet to exit")
        # Its workers follow it (they see their lifeline close).
        workers = [p for _, n, p in starts(started, pids=True) if n == victim]
        wait_until(lambda: all(process_gone(p) for p in workers), timeout=30,
                   what="the dead raylet's workers to exit")
    finally:
        touch(gate)
    # Every result arrives, none from the dead node: what ran there ran again
    # on another node.
    results = loom.get(refs, timeout=12 * NODE_TIMEOUT_S)
    by_task = {}
    for index, node in starts(started):
        by_task.setdefault(index, []).append(node)
    assert victim not in results, (victim, results, by_task)
    on_victim = [i for i, nodes in by_task.items() if victim in nodes]
    assert on_victim
    for i in on_victim:
        assert len(by_task[i]) == 2 and by_task[i][0] != by_task[i][1], by_task
        assert results[i] != victim
    # The head declares the node dead within its timeout.
    wait_until(lambda: not next(n["Alive"] for n in loom.nodes()
                                if n["NodeID"] == victim),
               timeout=4 * NODE_TIMEOUT_S, what="the node declared dead")


LEASELESS_DRIVER = """
    import os, signal, time
    import loom
    from loom.exceptions import WorkerCrashedError

    loom.init(num_cpus=1)

    @loom.remote
    def one():
        return 1

    assert loom.get(one.remote(), timeout=60) == 1
    [node] = loom.nodes()
    os.kill(node["Pid"], signal.SIGKILL)
    from conftest import process_gone
    while not process_gone(node["Pid"]):
        time.sleep(0.01)

    start = time.monotonic()
    # Another shape than the task above: it needs a lease of its own.
    ref = one.options(num_cpus=0.5).remote()
    try:
        loom.get(ref, timeout=120)
        print("GOT A VALUE", flush=True)
    except WorkerCrashedError as e:
        print(f"CRASHED after {time.monotonic() - start:.1f} s: {e}", flush=True)
"""


@pytest.mark.loom_timeout(180)
def test_a_driver_whose_raylet_died_gets_worker_crashed(processes):
    # 50 lease attempts, 200 ms apart, then WorkerCrashedError.
    code, out, err = processes.run_driver(LEASELESS_DRIVER, timeout=150)
    assert "CRASHED after" in out, (out, err)
    assert "cannot lease a worker" in out
    seconds = float(out.split("CRASHED after ")[1].split(" s")[0])
    assert 49 * 0.2 <= seconds < 60, out
    assert err.count("; retrying") == 49, err  # then the 50th failure is final
    assert code == 0, err
    wait_until(lambda: not processes.leftovers(), timeout=30,
               what="the driver's cluster processes to exit")


@loom.remote
def wait_at_gate(started_dir, gate):
    touch(os.path.join(started_dir, str(os.getpid())))
    wait_for_file(gate)
    return os.getpid()


@pytest.mark.loom_timeout(120)
def test_a_killed_fork_server_is_restarted(new_cluster, tmp_path):
    new_cluster(num_cpus=2)  # two Python workers start with the driver
    started, gate = tmp_path / "started", str(tmp_path / "gate")
    started.mkdir()
    touch(gate)
    # The fork server has forked the driver's first workers.
    loom.get(wait_at_gate.remote(str(started), gate), timeout=60)
    [node] = loom.nodes()
    [server] = python_fork_servers(node["Pid"])
    os.kill(server, signal.SIGKILL)
    wait_until(lambda: process_gone(server), what="the fork server to exit")
    os.remove(gate)
    shutil.rmtree(started)
    started.mkdir()
    # Four at once on two CPUs: two wait for workers the dead server would
    # have forked.
    half = wait_at_gate.options(num_cpus=0.5)
    refs = [half.remote(str(started), gate) for _ in range(4)]
    try:
        wait_until(lambda: len(os.listdir(started)) == 4, timeout=60,
                   what="four tasks running at once")
    finally:
        touch(gate)
    assert len(set(loom.get(refs, timeout=60))) == 4
    # A new fork server forked them, and serves later work too.
    [again] = python_fork_servers(node["Pid"])
    assert again != server
    assert loom.get(wait_at_gate.remote(str(started), gate), timeout=60) > 0


@loom.remote
def layer(below, n):
    """`below` and 256 KiB of the letter 'a' + n: above the inline limit, so
    each result lives in the store of the node that made it."""
    return below + bytes([ord("a") + n]) * (256 << 10)


def kill_node(node_id):
    """kill -9 the node's raylet; returns once the head declared it dead."""
    pid = next(n["Pid"] for n in loom.nodes() if n["NodeID"] == node_id)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not next(n["Alive"] for n in loom.nodes()
                                if n["NodeID"] == node_id),
               timeout=4 * NODE_TIMEOUT_S, what="the node declared dead")


@pytest.mark.loom_timeout(180)
def test_a_chain_lost_with_its_node_is_rebuilt(four_nodes):
    # Not the driver's own node: its raylet serves the driver's leases.
    driver_node = loom.get_runtime_context().get_node_id()
    victim = next(n for n in four_nodes if n != driver_node)
    there = layer.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        victim, soft=True))
    a = there.remote(b"", 0)
    b = there.remote(a, 1)
    c = there.remote(b, 2)
    # Done there, and read nowhere else: the only copies are on the victim.
    ready, _ = loom.wait([c], timeout=60)
    assert ready == [c]
    kill_node(victim)
    expected = b"".join(bytes([ord("a") + n]) * (256 << 10) for n in range(3))
    assert loom.get(c, timeout=120) == expected
    assert loom.get(a, timeout=60) == expected[:256 << 10]


@pytest.mark.loom_timeout(180)
def test_a_task_whose_argument_was_lost_with_its_node_runs_again(four_nodes):
    # The argument's only copy is on a node that dies before the task that
    # reads it runs: the worker cannot pull it, the owner rebuilds it from
    # lineage and runs the task again (not a failure of the task).
    driver_node = loom.get_runtime_context().get_node_id()
    victim = next(n for n in four_nodes if n != driver_node)
    a = layer.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        victim, soft=True)).remote(b"", 0)
    ready, _ = loom.wait([a], timeout=60)
    assert ready == [a]
    kill_node(victim)
    b = layer.remote(a, 1)
    expected = b"".join(bytes([ord("a") + n]) * (256 << 10) for n in range(2))
    assert loom.get(b, timeout=120) == expected


LOST_PUT_DRIVER = """
    import os, time
    import loom
    from loom.exceptions import ObjectLostError

    loom.init(num_cpus=1)
    ref = loom.put(b"x" * (1 << 20))
    [node] = loom.nodes()
    os.kill(node["Pid"], 9)
    # The head declares the node dead after its timeout.
    while next(n["Alive"] for n in loom.nodes()):
        time.sleep(0.05)
    try:
        loom.get(ref, timeout=60)
        print("GOT A VALUE", flush=True)
    except ObjectLostError as e:
        print(f"LOST {node['NodeID']}: {e}", flush=True)
"""


@pytest.mark.loom_timeout(120)
def test_a_put_lost_with_its_node_raises_object_lost_error(processes):
    code, out, err = processes.run_driver(LOST_PUT_DRIVER, timeout=100)
    assert "LOST " in out, (out, err)
    node, message = out.split("LOST ")[1].split(": ", 1)
    assert "was made by put" in message and "cannot be rebuilt" in message
    assert f"node {node[:12]}" in message and "died" in message, message
    assert code == 0, err
