"""Placement groups over four raylets: each strategy, atomic reservation,
infeasible groups reported, tasks and actors in bundles, removal."""
import time

import pytest

import loom
from loom.exceptions import ActorDiedError, InfeasibleError
from loom.util import (placement_group, placement_group_table,
                       remove_placement_group)
from loom.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from conftest import wait_until
from test_scheduling import four_nodes  # noqa: F401 - the fixture


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


def test_each_strategy_places_its_bundles(four_nodes):
    spread = placement_group([{"CPU": 0.5}] * 3, strategy="SPREAD")
    assert len(set(nodes_of(spread))) == 3
    strict = placement_group([{"CPU": 0.5}] * 4, strategy="STRICT_SPREAD")
    assert set(nodes_of(strict)) == set(four_nodes)
    remove_placement_group(spread)
    remove_placement_group(strict)
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
    time.sleep(1.5)  # heartbeats carry any reservation
    assert free_cpus() == 8.0
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
    victim = next(n for n in nodes if n != head)  # not the driver's raylet
    pid = next(n["Pid"] for n in loom.nodes() if n["NodeID"] == victim)
    os.kill(pid, signal.SIGKILL)

    def placed_again():
        info = placement_group_table(pg)
        return (info["state"] == "CREATED" and victim not in
                info["bundle_nodes"] and len(set(info["bundle_nodes"])) == 3)

    wait_until(placed_again, timeout=60, what="the group placed again")
    remove_placement_group(pg)
