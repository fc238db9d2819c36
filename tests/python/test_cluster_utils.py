# tests/python/test_cluster_utils.py
#
# loom.cluster_utils.Cluster: several real nodes (raylets; the head also runs
# the GCS) on this machine, under a session root of the cluster's own.

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import loom
from loom import _core
from loom.cluster_utils import Cluster, _processes_mentioning

from conftest import process_gone, wait_until

NODE_TIMEOUT_MS = 2000


@pytest.fixture
def cluster(no_cluster):
    """A head with 1 CPU whose GCS declares a silent node dead after 2 s."""
    c = Cluster(head_node_args={"num_cpus": 1,
                                "node_timeout_ms": NODE_TIMEOUT_MS})
    try:
        yield c
    finally:
        c.shutdown()
        assert not os.path.exists(c.session_root)


def head_view(cluster):
    """{node_id: alive} as the head's GCS lists them."""
    return {n["NodeID"]: n["Alive"]
            for n in _core.head_nodes(cluster.address, 5000)}


@loom.remote(num_cpus=0)
def where():
    return loom.get_runtime_context().get_node_id()


def test_tasks_needing_a_custom_resource_run_on_the_node_that_has_it(cluster):
    a = cluster.add_node(num_cpus=1, resources={"disk_a": 1},
                         labels={"zone": "a"})
    b = cluster.add_node(num_cpus=1, resources={"disk_b": 2})
    cluster.wait_for_nodes(timeout=30)
    ids = {cluster.head_node.node_id, a.node_id, b.node_id}
    assert len(ids) == 3 and None not in ids
    assert head_view(cluster) == {i: True for i in ids}

    cluster.connect()
    nodes = {n["NodeID"]: n for n in loom.nodes()}
    assert set(nodes) == ids
    assert nodes[a.node_id]["Resources"]["disk_a"] == 1
    assert nodes[a.node_id]["Labels"]["zone"] == "a"
    assert nodes[b.node_id]["Resources"]["disk_b"] == 2
    assert "disk_a" not in nodes[cluster.head_node.node_id]["Resources"]
    # The driver sits on the head's raylet.
    assert loom.get_runtime_context().get_node_id() == cluster.head_node.node_id

    on_a = [where.options(resources={"disk_a": 1}).remote() for _ in range(4)]
    on_b = [where.options(resources={"disk_b": 1}).remote() for _ in range(4)]
    assert loom.get(on_a, timeout=60) == [a.node_id] * 4
    assert loom.get(on_b, timeout=60) == [b.node_id] * 4


@pytest.mark.loom_timeout(180)
def test_removed_nodes_are_dead_at_the_head_and_tasks_go_on_elsewhere(cluster):
    stays = cluster.add_node(num_cpus=1, resources={"slot": 1})
    leaves = cluster.add_node(num_cpus=1, resources={"slot": 1})
    killed = cluster.add_node(num_cpus=1, resources={"slot": 1})
    cluster.wait_for_nodes()
    cluster.connect()
    # A worker on each node, so that removal has workers to stop.
    refs = [where.options(resources={"slot": 1}).remote() for _ in range(12)]
    assert set(loom.get(refs, timeout=60)) <= {stays.node_id, leaves.node_id,
                                               killed.node_id}

    leaving_pids = leaves.pids
    cluster.remove_node(leaves)
    assert all(process_gone(p) for p in leaving_pids)
    assert _processes_mentioning(leaves.session_dir) == []
    wait_until(lambda: head_view(cluster)[leaves.node_id] is False,
               timeout=2 * NODE_TIMEOUT_MS / 1000 + 5,
               what="the head to see the removed node dead")

    # Without a goodbye (SIGKILL): the head notices within its node timeout.
    cluster.remove_node(killed, allow_graceful=False)
    start = time.monotonic()
    wait_until(lambda: head_view(cluster)[killed.node_id] is False,
               timeout=2 * NODE_TIMEOUT_MS / 1000 + 5,
               what="the head to see the killed node dead")
    assert time.monotonic() - start < 2 * NODE_TIMEOUT_MS / 1000 + 5
    assert _processes_mentioning(killed.session_dir) == []

    assert head_view(cluster)[stays.node_id] is True
    assert cluster.list_all_nodes() == [cluster.head_node, stays]
    refs = [where.options(resources={"slot": 1}).remote() for _ in range(8)]
    assert loom.get(refs, timeout=60) == [stays.node_id] * 8
    cluster.wait_for_nodes(timeout=10)  # removed nodes are not waited for


def test_a_node_that_cannot_start_fails_wait_for_nodes_clearly(cluster):
    good = cluster.add_node(num_cpus=1, wait=False)
    bad = cluster.add_node(wait=False, resources={"broken": -1})
    start = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        cluster.wait_for_nodes(timeout=20)
    message = str(info.value)
    assert "could not start" in message
    assert "'broken' has invalid quantity -1" in message
    # A start known to have failed is reported at once, not at the deadline.
    assert time.monotonic() - start < 20
    assert bad.node_id is None

    # Waiting at the front door: add_node(wait=True) raises instead.
    with pytest.raises(RuntimeError, match="'broken2' has invalid quantity"):
        cluster.add_node(resources={"broken2": -1})

    # Once the broken one is removed, the rest are up.
    cluster.remove_node(bad)
    cluster.wait_for_nodes(timeout=30)
    assert head_view(cluster)[good.node_id] is True

    # A node that dies behind the cluster's back: once the head sees it
    # dead, waiting for it times out at the deadline, naming it.
    os.kill(good.pids[-1], signal.SIGKILL)  # its raylet
    wait_until(lambda: head_view(cluster)[good.node_id] is False,
               timeout=2 * NODE_TIMEOUT_MS / 1000 + 5,
               what="the head to see the crashed node dead")
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="after 1 s") as info:
        cluster.wait_for_nodes(timeout=1)
    assert time.monotonic() - start >= 1
    assert f"id={good.node_id}" in str(info.value)
    assert "is not alive at the head" in str(info.value)


def test_unknown_node_arguments_are_refused(cluster):
    with pytest.raises(TypeError, match="num_cpu"):
        cluster.add_node(num_cpu=1)
    with pytest.raises(TypeError, match="head_node_args"):
        cluster.add_node(node_timeout_ms=100)
    with pytest.raises(ValueError, match="shutdown"):
        cluster.remove_node(cluster.head_node)


def test_shutdown_ends_every_process_and_removes_the_root(no_cluster):
    with Cluster(head_node_args={"num_cpus": 1}) as cluster:
        root = cluster.session_root
        node = cluster.add_node(num_cpus=1, resources={"r": 1})
        cluster.connect()
        pids = cluster.head_node.pids + node.pids
        assert loom.get(where.options(resources={"r": 1}).remote(),
                        timeout=60) == node.node_id
        assert loom.get(where.remote(), timeout=60) == cluster.head_node.node_id
        # Daemons and workers of both nodes carry the root on their
        # command lines.
        assert len(_processes_mentioning(root)) >= 5
    assert not loom.is_initialized()  # the driver joined to it went too
    assert all(process_gone(p) for p in pids)
    assert _processes_mentioning(root) == []
    assert not os.path.exists(root)
    cluster.shutdown()  # a second time is harmless


def test_a_cluster_left_running_goes_at_interpreter_exit(tmp_path, no_cluster):
    script = tmp_path / "leave_running.py"
    script.write_text(textwrap.dedent("""
        import loom
        from loom.cluster_utils import Cluster
        cluster = Cluster(head_node_args={"num_cpus": 1})
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        cluster.connect()
        print(cluster.session_root, flush=True)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    root = done.stdout.split()[-1]
    assert root.startswith("/tmp/loom-cl-")
    assert _processes_mentioning(root) == []
    assert not os.path.exists(root)


def test_daemons_exit_with_a_killed_owner(tmp_path, no_cluster):
    # kill -9 leaves no atexit: the lifeline still takes the daemons down.
    script = tmp_path / "killed_owner.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        from loom.cluster_utils import Cluster
        cluster = Cluster(head_node_args={"num_cpus": 1})
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        print(cluster.session_root, flush=True)
        time.sleep(300)
    """))
    proc = subprocess.Popen([sys.executable, str(script)],
                            stdout=subprocess.PIPE, text=True)
    root = None
    try:
        root = proc.stdout.readline().strip()
        assert root.startswith("/tmp/loom-cl-")
        assert len(_processes_mentioning(root)) >= 3  # gcs and two raylets
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        wait_until(lambda: _processes_mentioning(root) == [], timeout=20,
                   what="the daemons to exit with their owner")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if root and root.startswith("/tmp/loom-cl-"):
            for pid in _processes_mentioning(root):
                os.kill(pid, signal.SIGKILL)
            subprocess.run(["rm", "-rf", root], check=False)


def _stale_session(root, address):
    """A session a stopped head left under `root`: same address (its port
    given out again), another token, and a name newer than any live one."""
    path = os.path.join(root, "session_99991231_235959_1_0")
    os.makedirs(path)
    with open(os.path.join(path, "address"), "w") as f:
        f.write(address)
    with open(os.path.join(path, "auth_token"), "w") as f:
        f.write("0" * 64)
    return path


def test_a_stale_session_with_the_heads_address_does_not_shadow_its_token(
        cluster):
    # This process started the head (it holds the token); the default root
    # holds a stale session naming the same address.
    stale = _stale_session(os.environ["LOOM_SESSION_ROOT"], cluster.address)
    try:
        loom.init(address=cluster.address)
        assert loom.get(where.remote(), timeout=60) == \
            cluster.head_node.node_id
        loom.shutdown()
        # A driver with no token of its own finds the live session beside
        # the stale one, which is newer.
        _stale_session(cluster.session_root, cluster.address)
        env = dict(os.environ, LOOM_SESSION_ROOT=cluster.session_root)
        env.pop("LOOM_AUTH_TOKEN", None)
        code = (f"import loom; loom.init(address={cluster.address!r}); "
                "print(len(loom.nodes()))")
        done = subprocess.run([sys.executable, "-c", code], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split()[-1] == "1"
    finally:
        shutil.rmtree(stale, ignore_errors=True)


def test_a_head_stopped_past_the_node_timeout_declares_no_node_dead(cluster):
    # The head's loop did not run for 2.5 node timeouts (stopped here; a
    # head starved of CPU or a paused VM is the same to it): the nodes'
    # heartbeats went unheard, not unsent. Once it runs again it must not
    # declare them all dead and fence them (their raylets would exit).
    node = cluster.add_node(num_cpus=1, resources={"other": 1})
    cluster.wait_for_nodes(timeout=30)
    ids = {cluster.head_node.node_id, node.node_id}
    gcs = cluster.head_node.pids[0]
    os.kill(gcs, signal.SIGSTOP)
    try:
        time.sleep(NODE_TIMEOUT_MS * 2.5 / 1000)
    finally:
        os.kill(gcs, signal.SIGCONT)
    time.sleep(NODE_TIMEOUT_MS * 1.5 / 1000)  # deaths would be declared by now
    assert head_view(cluster) == {i: True for i in ids}
    assert not process_gone(node.pids[-1]), "the node's raylet exited"
    cluster.connect()

    @loom.remote(num_cpus=0, resources={"other": 1})
    def on_other():
        return loom.get_runtime_context().get_node_id()

    assert loom.get(on_other.remote(), timeout=30) == node.node_id
