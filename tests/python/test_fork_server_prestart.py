# tests/python/test_fork_server_prestart.py
#
# When a Python driver joins, every node starts a fork server for its
# runtime at once (the head publishes JOB_STARTED with the driver's
# runtime), so that a node's first Python task does not wait a second or
# more for the interpreter to import.

import os

import loom
from conftest import python_fork_servers, two_node_cluster, wait_until


def test_a_python_driver_starts_fork_servers_on_every_node(no_cluster):
    cluster, other = two_node_cluster(head_cpus=1)
    try:
        raylet = other.pids[-1]
        assert python_fork_servers(raylet) == []
        cluster.connect()
        # No task has run on the other node: its fork server starts anyway.
        servers = wait_until(lambda: python_fork_servers(raylet), timeout=30,
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
