# tests/python/test_memory_monitor.py
#
# The raylet's memory monitor (docs/operations.md, "Memory monitor"), on a
# cluster of the test's own whose raylet measures its workers against a
# 200 MiB limit (--memory-monitor-limit-bytes): a task that holds 300 MiB is
# killed and fails with OutOfMemoryError naming it and the figures, or is
# retried when it has retries left; an actor killed so dies saying it; the
# raylet lives on and runs what follows. The machine's own memory is never
# filled.

import gc
import os
import time

import pytest

import loom
from loom.cluster_utils import Cluster
from loom.util import state
from conftest import process_gone, touch

LIMIT = 200 << 20
HOG_MIB = 300


@pytest.fixture
def cluster(no_cluster):
    c = Cluster(head_node_args={"num_cpus": 2,
                                "memory_monitor_limit_bytes": LIMIT})
    try:
        c.connect()
        yield c
    finally:
        # The refs that pytest.raises keeps in its traceback go with this
        # driver, not with a later test's, whose objects may have the same
        # ids (job 1 of a fresh head, the same task counter).
        gc.collect()
        c.shutdown()


def hold(mib):
    block = b"x" * (mib << 20)  # written, so resident
    time.sleep(60)  # until the monitor kills this worker
    return len(block)


@loom.remote(max_retries=0)
def hog(mib):
    return hold(mib)


@loom.remote(max_retries=1)
def hog_once(marker, mib):
    if not os.path.exists(marker):
        touch(marker)
        hold(mib)
    return "second attempt"


@loom.remote
def small(x):
    return x + 1


@loom.remote
class Holder:
    def hold(self, mib):
        return hold(mib)

    def ready(self):
        return True


@pytest.mark.loom_timeout(60)
def test_a_task_over_the_limit_fails_with_out_of_memory(cluster):
    with pytest.raises(loom.exceptions.OutOfMemoryError) as info:
        loom.get(hog.remote(HOG_MIB), timeout=30)
    text = str(info.value)
    assert "hog" in text
    assert "memory monitor" in text
    assert "of a 200.0 MiB limit" in text
    assert "threshold 0.95" in text
    assert "0 retries are used up" in text
    # The raylet and the head live on, and run what comes next.
    assert not any(process_gone(pid) for pid in cluster.head_node.pids)
    assert loom.get([small.remote(i) for i in range(4)], timeout=30) == \
        [1, 2, 3, 4]


@pytest.mark.loom_timeout(60)
def test_a_task_with_retries_left_is_retried(cluster, tmp_path):
    marker = str(tmp_path / "first-attempt")
    assert loom.get(hog_once.remote(marker, HOG_MIB), timeout=30) == \
        "second attempt"
    assert os.path.exists(marker)
    # The kill used the one retry: a task that always holds too much fails
    # after its retry, as after a crash.
    with pytest.raises(loom.exceptions.OutOfMemoryError,
                       match="1 retries are used up"):
        loom.get(hog.options(max_retries=1).remote(HOG_MIB), timeout=30)


@pytest.mark.loom_timeout(60)
def test_an_actor_killed_for_memory_dies_saying_so(cluster):
    holder = Holder.remote()  # no restarts
    assert loom.get(holder.ready.remote(), timeout=30)
    with pytest.raises(loom.exceptions.ActorDiedError) as info:
        loom.get(holder.hold.remote(HOG_MIB), timeout=30)
    text = str(info.value)
    assert "out of memory: the memory monitor of node" in text, text
    assert "of a 200.0 MiB limit" in text and "threshold 0.95" in text
    # The head's record says it too (state API, `loom list actors`).
    [row] = [a for a in state.list_actors(limit=1000)
             if a.class_name.endswith("Holder")]
    assert row.state == "DEAD"
    assert row.death_cause.startswith("out of memory: the memory monitor")
    # The node lives on.
    assert loom.get(small.remote(1), timeout=30) == 2


@pytest.mark.loom_timeout(60)
def test_a_restarted_actors_lost_call_says_out_of_memory(cluster):
    holder = Holder.options(max_restarts=1).remote()
    assert loom.get(holder.ready.remote(), timeout=30)
    with pytest.raises(loom.exceptions.ActorDiedError) as info:
        loom.get(holder.hold.remote(HOG_MIB), timeout=30)
    text = str(info.value)
    assert "out of memory: the memory monitor of node" in text, text
    assert "it was restarted" in text, text
    assert loom.get(holder.ready.remote(), timeout=30)  # the new one serves
