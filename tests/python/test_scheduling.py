"""Scheduling strategies over four raylets: SPREAD, node affinity (hard and
soft), label selectors, for tasks and actors."""
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import loom
from loom.exceptions import InfeasibleError
from loom.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from conftest import loom_cli, touch, wait_until

ZONES = ("a", "b", "b", "c")  # the head's raylet first


def _start(processes, *args):
    log = processes.tmp_dir / "loom-start.log"
    with open(log, "a") as out:  # a file: the daemons inherit it
        r = subprocess.run([loom_cli(), "start", *args, "--num-cpus", "2",
                            "--node-ip-address", "127.0.0.1",
                            "--session-root", processes.session_root],
                           env=processes.env(), timeout=120, stdout=out,
                           stderr=subprocess.STDOUT)
    if r.returncode != 0:
        pytest.fail(f"loom start {' '.join(args)}:\n{log.read_text()}")


def _knows(node, others):
    """Whether the raylet of `node` (a loom.nodes() entry) last logged a
    view of `others` other nodes alive."""
    try:
        text = (Path(node["SessionDir"]) / "logs" / "raylet.log").read_text()
    except OSError:
        return False
    views = [line.split("view: ")[1] for line in text.splitlines()
             if f"[raylet {node['Pid']}]" in line and "node's view: " in line]
    return bool(views) and views[-1].startswith(f"{others} other")


@pytest.fixture
def four_nodes(processes):
    """Four 2-CPU raylets labelled zone=a (head), b, b, c; this process is
    their driver. Yields {node id: zone}."""
    _start(processes, "--head", "--port", "0", "--labels", f"zone={ZONES[0]}")
    latest = Path(processes.session_root) / "session_latest"
    address = (latest / "address").read_text().strip()
    for zone in ZONES[1:]:
        _start(processes, "--address", address, "--labels", f"zone={zone}")
    try:
        # The token from the environment, as a driver elsewhere would; the
        # driver attaches to the first raylet the head lists (any zone).
        os.environ["LOOM_AUTH_TOKEN"] = (latest / "auth_token").read_text()
        try:
            loom.init(address=address)
        finally:
            del os.environ["LOOM_AUTH_TOKEN"]
        nodes = wait_until(
            lambda: [n for n in loom.nodes() if n["Alive"]]
            if len([n for n in loom.nodes() if n["Alive"]]) == 4 else None,
            timeout=60, what="four raylets")
        # The head lists all four; each raylet learns of the nodes that
        # joined after it on a later heartbeat, and logs its view when it
        # changes: wait until each knows the other three, so that spillback
        # sees them.
        wait_until(lambda: all(_knows(n, 3) for n in nodes), timeout=60,
                   what="every raylet to know the other three")
        yield {n["NodeID"]: n["Labels"]["zone"] for n in nodes}
    finally:
        loom.shutdown()
        subprocess.run([loom_cli(), "stop", "--session-root",
                        processes.session_root], env=processes.env(),
                       timeout=120, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


@loom.remote
def where(seconds=0.0):
    time.sleep(seconds)
    return loom.get_runtime_context().get_node_id()


@loom.remote
class Where:
    def node(self):
        return loom.get_runtime_context().get_node_id()


def test_spread_uses_every_node(four_nodes, tmp_path):
    # The tasks wait for each other, so that none runs on a worker another
    # one freed (slow worker starts would let fast nodes take them all).
    refs = [where_together.options(scheduling_strategy="SPREAD").remote(
        str(tmp_path), 8) for _ in range(8)]
    assert set(loom.get(refs, timeout=120)) == set(four_nodes)


def test_hard_node_affinity_runs_on_that_node(four_nodes):
    for node in four_nodes:
        strategy = NodeAffinitySchedulingStrategy(node, soft=False)
        assert loom.get(where.options(scheduling_strategy=strategy).remote(),
                        timeout=60) == node
    target = next(n for n, z in four_nodes.items() if z == "c")
    actor = Where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        target)).remote()
    assert loom.get(actor.node.remote(), timeout=60) == target


def test_node_affinity_to_a_missing_node(four_nodes):
    missing = "ab" * 16
    soft = NodeAffinitySchedulingStrategy(missing, soft=True)
    assert loom.get(where.options(scheduling_strategy=soft).remote(),
                    timeout=60) in four_nodes
    hard = NodeAffinitySchedulingStrategy(missing, soft=False)
    with pytest.raises(InfeasibleError):
        loom.get(where.options(scheduling_strategy=hard).remote(), timeout=60)


def test_label_selector_keeps_to_matching_nodes(four_nodes):
    zone_b = {n for n, z in four_nodes.items() if z == "b"}
    refs = [where.options(label_selector={"zone": "b"}).remote(0.2)
            for _ in range(6)]
    assert set(loom.get(refs, timeout=120)) <= zone_b
    zone_c = next(n for n, z in four_nodes.items() if z == "c")
    actor = Where.options(label_selector={"zone": "c"}).remote()
    assert loom.get(actor.node.remote(), timeout=60) == zone_c
    with pytest.raises(InfeasibleError, match="zone=z"):
        loom.get(where.options(label_selector={"zone": "z"}).remote(),
                 timeout=60)


def test_bad_strategies_are_refused(loom_cluster):
    with pytest.raises(ValueError):
        where.options(scheduling_strategy="PACKED").remote()
    with pytest.raises(ValueError):
        NodeAffinitySchedulingStrategy("not-a-node")
    with pytest.raises(ValueError):
        where.options(label_selector={"zone": 3}).remote()


@loom.remote
def where_together(started_dir, count):
    """Its node, once `count` tasks have started (or after 30 s): none ends
    before all are placed, so none runs on a worker another one freed."""
    touch(os.path.join(started_dir, uuid.uuid4().hex))
    deadline = time.monotonic() + 30
    while (len(os.listdir(started_dir)) < count
           and time.monotonic() < deadline):
        time.sleep(0.02)
    return loom.get_runtime_context().get_node_id()


def test_default_policy_leaves_a_busy_node(four_nodes, tmp_path):
    # Once the driver's node is half busy, tasks go to the
    # least utilized nodes rather than waiting for it.
    refs = [where_together.remote(str(tmp_path), 4) for _ in range(4)]
    assert len(set(loom.get(refs, timeout=120))) >= 3


@loom.remote
def make_big():
    import numpy as np
    return np.ones(1 << 20)  # 8 MiB: in the store of the node that ran it


@loom.remote
def where_with(array):
    return loom.get_runtime_context().get_node_id(), float(array.sum())


def test_tasks_go_where_their_large_arguments_are(four_nodes):
    # The driver's node is idle, but the argument lives on zone c's node.
    zone_c = next(n for n, z in four_nodes.items() if z == "c")
    big = make_big.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        zone_c)).remote()
    loom.wait([big], timeout=60)
    node, total = loom.get(where_with.remote(big), timeout=60)
    assert (node, total) == (zone_c, float(1 << 20))
