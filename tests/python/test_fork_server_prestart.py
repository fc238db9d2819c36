# tests/python/test_fork_server_prestart.py
#
# When a Python driver joins, every node starts a fork server for its
# runtime at once (the head publishes JOB_STARTED with the driver's
# runtime), so that a node's first Python task does not wait a second or
# more for the interpreter to import.

import os

import loom
from conftest import two_node_cluster, wait_until


def _python_fork_servers(raylet_pid):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == raylet_pid and b"zygote_main" in cmdline:
            found.append(int(entry))
    return found


def test_a_python_driver_starts_fork_servers_on_every_node(no_cluster):
    cluster, other = two_node_cluster(head_cpus=1)
    try:
        raylet = other.pids[-1]
        assert _python_fork_servers(raylet) == []
        cluster.connect()
        # No task has run on the other node: its fork server starts anyway.
        servers = wait_until(lambda: _python_fork_servers(raylet), timeout=30,
                             what="a Python fork server on the other node")
        assert len(servers) == 1

        @loom.remote(resources={"other": 1})
        def where():
            return os.getppid()

        # Its workers come from that server.
        assert loom.get(where.remote(), timeout=60) == servers[0]
    finally:
        loom.shutdown()
        cluster.shutdown()
