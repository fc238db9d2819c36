# tests/python/test_fork_server_start.py
#
# A fork server that takes long to start (a Python one imports for seconds
# on a loaded machine) is waited for off the raylet's loop: the node goes on
# granting leases to other work and stays alive, and the tasks that wait for
# the slow server run once it is ready.

import time

import loom


@loom.remote
def node():
    return loom.get_runtime_context().get_node_id()


def test_a_slow_fork_server_does_not_stall_its_node(new_cluster, tmp_path):
    # An interpreter started with this directory on PYTHONPATH sleeps 6 s
    # at startup (site imports sitecustomize): a slow fork server.
    (tmp_path / "sitecustomize.py").write_text("import time\ntime.sleep(6)\n")
    new_cluster(num_cpus=2)
    here = loom.get(node.remote(), timeout=60)  # the usual server is up
    slow_env = {"env_vars": {"PYTHONPATH": str(tmp_path)}}
    start = time.monotonic()
    slow = node.options(runtime_env=slow_env).remote()
    time.sleep(0.5)  # its fork server is starting now
    # Other work is granted and runs meanwhile: the loop is not waiting.
    assert loom.get(node.remote(), timeout=3) == here
    assert time.monotonic() - start < 4
    assert all(n["Alive"] for n in loom.nodes())
    # And the slow one runs once its server is ready.
    assert loom.get(slow, timeout=60) == here
    assert time.monotonic() - start >= 5
