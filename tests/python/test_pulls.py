# tests/python/test_pulls.py
#
# Objects on another node, read together: a get of many refs and a task
# with many ref arguments pull them all first (several in flight) and pin
# them with one store call; each comes back whole and right, duplicates
# and objects already here included.

import numpy as np

import loom
from conftest import two_node_cluster


def test_many_objects_from_another_node_in_one_get(no_cluster):
    cluster, _ = two_node_cluster(head_cpus=1)
    try:
        cluster.connect()

        @loom.remote(resources={"other": 1})
        def make(n):
            return [loom.put(np.full(256 * 1024 + i, i % 251, dtype=np.uint8))
                    for i in range(n)]

        @loom.remote(resources={"other": 1})
        def where():
            return loom.get_runtime_context().get_node_id()

        @loom.remote
        def total(*arrays):
            return [int(a.nbytes) for a in arrays]

        far = loom.get(where.remote(), timeout=60)
        assert far != loom.get_runtime_context().get_node_id()
        refs = loom.get(make.remote(64), timeout=60)
        here = loom.put(np.arange(10))
        # Duplicates and a local object among the remote ones.
        values = loom.get(refs + refs[:3] + [here], timeout=60)
        for i, v in enumerate(values[:64]):
            assert v.nbytes == 256 * 1024 + i and v[0] == v[-1] == i % 251
        for i, v in enumerate(values[64:67]):
            assert v.nbytes == 256 * 1024 + i
        assert list(values[-1]) == list(range(10))
        # As arguments of a task on this node: pulled there, all of them.
        fresh = loom.get(make.remote(16), timeout=60)
        sizes = loom.get(total.options(num_cpus=0).remote(*fresh), timeout=60)
        assert sizes == [256 * 1024 + i for i in range(16)]
    finally:
        loom.shutdown()
        cluster.shutdown()
