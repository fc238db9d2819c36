# tests/python/test_util_node.py
#
# loom.util.get_node_ip_address(): the driver's node as the cluster lists
# it, and the same answer inside a task on that node.

import loom
from loom.util import get_node_ip_address


@loom.remote
def ip_in_task():
    return get_node_ip_address()


def test_get_node_ip_address(loom_cluster):
    ip = get_node_ip_address()
    me = loom.get_runtime_context().get_node_id()
    assert ip == [n for n in loom.nodes() if n["NodeID"] == me][0][
        "NodeManagerAddress"]
    assert ip.count(".") == 3
    assert loom.get(ip_in_task.remote(), timeout=60) == ip
