"""Placement groups over four raylets: each strategy, atomic reservation,
infeasible groups reported, tasks and actors in bundles, removal; groups
that go with their driver, and infeasible ones placed when a node joins."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import loom
from loom.exceptions import ActorDiedError, InfeasibleError
from loom.util import (placement_group, placement_group_table,
                       remove_placement_group)
from loom.util.scheduling_strategies import (NodeAffinitySchedulingStrategy,
                                             PlacementGroupSchedulingStrategy)

from conftest import loom_cli, touch, wait_until
from test_scheduling import four_nodes  # noqa: F401 - the fixture

# Raylets report their resources to the head this often (--heartbeat-ms).
HEARTBEAT_S = 0.5


@loom.remote
def where():
    return loom.get_runtime_context().get_node_id()


@loom.remote
class Where:
    def node(self):
        return loom.get_runtime_context().get_node_id()


def nodes_of(pg):
    assert loom.get(pg.ready(), timeout=60) is True
    return placement_group_table(pg)["bundle_nodes"]


def free_cpus():
    return loom.available_resources().get("CPU", 0.0)


def holds_for(predicate, seconds, what):
    """Fails the test if predicate() is ever false during `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), what
        time.sleep(0.05)


def test_each_strategy_places_its_bundles(four_nodes):
    spread = placement_group([{"CPU": 0.5}] * 3, strategy="SPREAD")
    assert len(set(nodes_of(spread))) == 3
    strict = placement_group([{"CPU": 0.5}] * 4, strategy="STRICT_SPREAD")
    assert set(nodes_of(strict)) == set(four_nodes)
    remove_placement_group(spread)
    remove_placement_group(strict)
    # Released bundles come back with the nodes' next heartbeats; PACK needs
    # them back to fit on one node.
    wait_until(lambda: free_cpus() == 8.0, timeout=20 * HEARTBEAT_S,
               what="the removed groups' CPUs back")
    pack = placement_group([{"CPU": 1}] * 2, strategy="PACK")
    assert len(set(nodes_of(pack))) == 1
    strict_pack = placement_group([{"CPU": 1}] * 2, strategy="STRICT_PACK")
    assert len(set(nodes_of(strict_pack))) == 1
    # PACK with more than a node holds: as few nodes as fit.
    wide = placement_group([{"CPU": 1}] * 3, strategy="PACK")
    assert len(set(nodes_of(wide))) == 2
    for pg in (pack, strict_pack, wide):
        remove_placement_group(pg)


def test_infeasible_groups_are_reported_and_reserve_nothing(four_nodes):
    wait_until(lambda: free_cpus() == 8.0, timeout=30, what="an idle cluster")
    too_spread = placement_group([{"CPU": 0.1}] * 5, strategy="STRICT_SPREAD")
    with pytest.raises(InfeasibleError, match="STRICT_SPREAD needs 5 nodes"):
        loom.get(too_spread.ready(), timeout=60)
    assert placement_group_table(too_spread)["state"] == "INFEASIBLE"
    # One bundle no node can hold: none of the others is reserved either.
    one_bad = placement_group([{"CPU": 1}, {"CPU": 1}, {"CPU": 3}])
    with pytest.raises(InfeasibleError):
        one_bad.wait(timeout_seconds=30)
    # A reservation would show in the next heartbeats: none comes.
    holds_for(lambda: free_cpus() == 8.0, 4 * HEARTBEAT_S,
              "an infeasible group reserved CPUs")
    remove_placement_group(too_spread)
    remove_placement_group(one_bad)


def test_tasks_and_actors_run_in_their_bundle(four_nodes):
    pg = placement_group([{"CPU": 1}] * 4, strategy="STRICT_SPREAD")
    nodes = nodes_of(pg)
    for i, node in enumerate(nodes):
        strategy = PlacementGroupSchedulingStrategy(pg, i)
        assert loom.get(where.options(scheduling_strategy=strategy).remote(),
                        timeout=60) == node
    actor = Where.options(
        scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 2)).remote()
    assert loom.get(actor.node.remote(), timeout=60) == nodes[2]
    any_bundle = PlacementGroupSchedulingStrategy(pg)
    assert loom.get(where.options(scheduling_strategy=any_bundle).remote(),
                    timeout=60) in nodes
    # Removal frees the bundles and stops what runs in them.
    remove_placement_group(pg)
    with pytest.raises(ActorDiedError):
        loom.get(actor.node.remote(), timeout=60)
    wait_until(lambda: free_cpus() == 8.0, timeout=30,
               what="the bundles' CPUs back")
    assert placement_group_table(pg)["state"] == "REMOVED"


def test_bad_groups_are_refused(loom_cluster):
    for bundles in ([], [{}], [{"CPU": -1}], "CPU"):
        with pytest.raises(ValueError):
            placement_group(bundles)
    with pytest.raises(ValueError):
        placement_group([{"CPU": 1}], strategy="TIGHT")


@loom.remote
def gpus_seen():
    import os
    return loom.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES")


def test_a_bundles_gpus_are_the_tasks_gpus(new_cluster):
    new_cluster(num_cpus=4, num_gpus=2)  # declared: no GPU needed
    first = placement_group([{"CPU": 1, "GPU": 1}])
    second = placement_group([{"CPU": 1, "GPU": 1}])
    seen = []
    for pg in (first, second):
        assert loom.get(pg.ready(), timeout=60)
        strategy = PlacementGroupSchedulingStrategy(pg, 0)
        seen.append(loom.get(gpus_seen.options(
            num_gpus=1, scheduling_strategy=strategy).remote(), timeout=60))
    # Each bundle reserved one GPU of its own; its task sees exactly that.
    assert sorted(ids[0] for ids, _ in seen) == [0, 1]
    assert [env for _, env in seen] == [str(ids[0]) for ids, _ in seen]
    for pg in (first, second):
        remove_placement_group(pg)


def test_a_group_that_loses_a_node_is_placed_again(four_nodes):
    import os
    import signal
    pg = placement_group([{"CPU": 1}] * 3, strategy="STRICT_SPREAD")
    nodes = nodes_of(pg)
    head = next(n for n, z in four_nodes.items() if z == "a")
    # Not the driver's raylet (it attaches to any of the four): a job whose
    # driver's node dies ends, and its groups with it.
    mine = loom.get_runtime_context().get_node_id()
    victim = next(n for n in nodes if n not in (head, mine))
    pid = next(n["Pid"] for n in loom.nodes() if n["NodeID"] == victim)
    os.kill(pid, signal.SIGKILL)

    def placed_again():
        info = placement_group_table(pg)
        return (info["state"] == "CREATED" and victim not in
                info["bundle_nodes"] and len(set(info["bundle_nodes"])) == 3)

    wait_until(placed_again, timeout=60, what="the group placed again")
    remove_placement_group(pg)


@loom.remote(num_cpus=2)
def hold_node(started, release):
    Path(started).touch()
    deadline = time.monotonic() + 120
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_task_waits_while_its_group_is_placed_again(four_nodes, tmp_path):
    # Three whole nodes in a group, the fourth kept busy: when a node of the
    # group dies, the group cannot be placed again until the fourth is free.
    pg = placement_group([{"CPU": 2}] * 3, strategy="STRICT_SPREAD")
    nodes = nodes_of(pg)
    spare = next(n for n in four_nodes if n not in nodes)
    started, release = tmp_path / "started", tmp_path / "release"
    held = hold_node.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        spare, soft=False)).remote(str(started), str(release))
    wait_until(started.exists, timeout=60, what="the spare node busy")
    # Not the head's node nor the driver's (their end ends the job).
    head = next(n for n, z in four_nodes.items() if z == "a")
    mine = loom.get_runtime_context().get_node_id()
    index, victim = next((i, n) for i, n in enumerate(nodes)
                         if n not in (head, mine))
    os.kill(next(n["Pid"] for n in loom.nodes() if n["NodeID"] == victim),
            signal.SIGKILL)
    wait_until(lambda: placement_group_table(pg)["state"] == "PENDING",
               timeout=60, what="the group waiting to be placed again")
    in_bundle = PlacementGroupSchedulingStrategy(pg, index)
    ref = where.options(scheduling_strategy=in_bundle).remote()
    # Longer than a raylet waits for a node that fits (3 s): a task of a
    # group being placed waits for it, not infeasible.
    ready, _ = loom.wait([ref], timeout=5)
    assert not ready, loom.get(ref)
    touch(release)
    loom.get(held, timeout=60)
    assert loom.get(ref, timeout=60) == \
        placement_group_table(pg)["bundle_nodes"][index]
    # A removed group's task fails, saying so.
    remove_placement_group(pg)
    with pytest.raises(InfeasibleError, match="placement group .* was removed"):
        loom.get(where.options(scheduling_strategy=in_bundle).remote(),
                 timeout=30)


# --- groups and the cluster's life: drivers that end, nodes that join ---------


def join(head_node):
    """This process joins the head_node cluster; returns its address. Its
    token is in the cluster's session root, as on a machine that runs it."""
    latest = Path(head_node.session_root) / "session_latest"
    address = (latest / "address").read_text().strip()
    loom.init(address=address, _session_root=head_node.session_root)
    return address


GROUP_DRIVER = """
    import os
    import loom
    from conftest import wait_for_file
    from loom.util import placement_group

    loom.init(address="auto")
    pg = placement_group([{{"CPU": 2}}])
    assert loom.get(pg.ready(), timeout=60)
    print("PLACED", pg.id, flush=True)
    wait_for_file({gate!r})
    print("EXITING", flush=True)
"""


def test_a_group_goes_when_its_driver_ends(head_node, tmp_path):
    join(head_node)
    try:
        wait_until(lambda: free_cpus() == 3.0, timeout=30, what="an idle cluster")
        gate = str(tmp_path / "gate")
        proc = head_node.start_driver(GROUP_DRIVER.format(gate=gate))
        line = proc.stdout.readline()
        assert line.startswith("PLACED "), (line, proc.stderr.read())
        pg_id = line.split()[1]
        wait_until(lambda: free_cpus() == 1.0, timeout=20 * HEARTBEAT_S,
                   what="the group's two CPUs reserved")
        touch(gate)  # the driver exits without removing its group
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "EXITING" in out, err
        wait_until(lambda: placement_group_table()[pg_id]["state"] == "REMOVED",
                   timeout=20 * HEARTBEAT_S, what="the group removed")
        wait_until(lambda: free_cpus() == 3.0, timeout=20 * HEARTBEAT_S,
                   what="the bundle's CPUs back")
    finally:
        loom.shutdown()


@loom.remote
def where_am_i():
    return loom.get_runtime_context().get_node_id()


def test_an_infeasible_group_is_placed_when_a_node_joins(head_node):
    address = join(head_node)
    try:
        pg = placement_group([{"CPU": 1, "accel": 1}])
        with pytest.raises(InfeasibleError):
            loom.get(pg.ready(), timeout=60)
        assert placement_group_table(pg)["state"] == "INFEASIBLE"

        log = head_node.tmp_dir / "join.log"
        with open(log, "w") as out:  # a file: the daemons inherit it
            r = subprocess.run(
                [loom_cli(), "start", "--address", address, "--num-cpus", "1",
                 "--node-ip-address", "127.0.0.1",
                 "--resources", json.dumps({"accel": 1}),
                 "--session-root", head_node.session_root],
                env=head_node.env(), timeout=120, stdout=out,
                stderr=subprocess.STDOUT)
        assert r.returncode == 0, log.read_text()
        joined = wait_until(
            lambda: next((n["NodeID"] for n in loom.nodes()
                          if n["Alive"] and "accel" in n["Resources"]), None),
            timeout=30, what="the new node")

        wait_until(lambda: placement_group_table(pg)["state"] == "CREATED",
                   timeout=30, what="the group placed on the new node")
        assert placement_group_table(pg)["bundle_nodes"] == [joined]
        assert loom.get(pg.ready(), timeout=30) is True
        in_bundle = PlacementGroupSchedulingStrategy(pg, 0)
        assert loom.get(where_am_i.options(scheduling_strategy=in_bundle).remote(),
                        timeout=60) == joined
        remove_placement_group(pg)
    finally:
        loom.shutdown()
