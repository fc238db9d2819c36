# tests/python/test_worker_output.py
#
# What workers print reaches the job's driver wherever the worker runs: the
# worker's raylet publishes the lines to the head, the driver polls the head
# and prints "(pid=N, ip=IP) line" on its stdout, or stderr for stderr.
# Nodes of a Cluster have session directories of their own, so nothing
# here can pass through a shared file.

import os
import re
import subprocess
import sys
import textwrap
import uuid

import pytest

import loom
from loom.cluster_utils import Cluster

from conftest import driver_output, wait_until



@pytest.fixture
def cluster(no_cluster):
    c = Cluster(head_node_args={"num_cpus": 1})
    try:
        yield c
    finally:
        loom.shutdown()
        c.shutdown()


@loom.remote(num_cpus=0)
def shout(token):
    print(f"out-{token}")
    print(f"err-{token}", file=sys.stderr)
    return os.getpid(), loom.get_runtime_context().get_node_id()


def test_prints_on_another_node_reach_the_driver_with_pid_and_ip(cluster,
                                                                 monkeypatch):
    far = cluster.add_node(num_cpus=1, resources={"far": 1})
    cluster.wait_for_nodes(timeout=30)
    assert far.session_dir != cluster.head_node.session_dir
    cluster.connect()
    assert loom.get_runtime_context().get_node_id() != far.node_id
    ip = {n["NodeID"]: n["NodeManagerAddress"]
          for n in loom.nodes()}[far.node_id]

    printed = driver_output(monkeypatch)
    token = uuid.uuid4().hex
    pid, node = loom.get(shout.options(resources={"far": 1}).remote(token),
                         timeout=60)
    assert node == far.node_id
    out_line = re.compile(r"^\(pid=%d, ip=%s\) out-%s$"
                          % (pid, re.escape(ip), token), re.MULTILINE)
    err_line = re.compile(r"^\(pid=%d, ip=%s\) err-%s$"
                          % (pid, re.escape(ip), token), re.MULTILINE)
    seen = {"out": "", "err": ""}

    def read():
        seen["out"], seen["err"] = printed()
        return out_line.search(seen["out"]) and err_line.search(seen["err"])

    wait_until(read, timeout=15, interval=0.1,
               what="the far worker's lines on the driver's stdout and "
                    "stderr")
    # Each stream gets its own lines only, once.
    assert f"err-{token}" not in seen["out"]
    assert f"out-{token}" not in seen["err"]
    assert len(out_line.findall(seen["out"])) == 1


def run_driver(body, timeout=120):
    script = textwrap.dedent("""
        import os, sys
        import loom

        @loom.remote
        def chatty(n, tag):
            for i in range(n):
                print(f"{tag}-{i}")
            return os.getpid()
    """) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=timeout)


def test_lines_printed_just_before_a_task_returns_are_shown_before_shutdown(
        no_cluster):
    # A user's script: the task prints, returns, the driver shuts down at
    # once. Every line is on the driver's stdout before shutdown returns.
    done = run_driver("""
        loom.init(num_cpus=1)
        pid = loom.get(chatty.remote(300, "last"))
        ip = loom.nodes()[0]["NodeManagerAddress"]
        import time
        start = time.monotonic()
        loom.shutdown()
        took = time.monotonic() - start
        print(f"shut down {pid} {ip} {took:.3f}", flush=True)
    """)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    pid, ip, took = re.search(r"^shut down (\d+) (\S+) (\S+)$", out,
                              re.MULTILINE).groups()
    # Waiting for the last lines is quick: a poll left parked at the head
    # (which held its exit up 5 s) or a flush that times out would show.
    assert float(took) < 4.0, took
    end = out.index("shut down")
    for i in range(300):
        line = f"(pid={pid}, ip={ip}) last-{i}\n"
        assert line in out[:end], f"{line!r} missing before shutdown:\n{out}"


def test_exit_without_shutdown_still_prints_the_last_lines(no_cluster):
    done = run_driver("""
        loom.init(num_cpus=1)
        loom.get(chatty.remote(3, "atexit"))
    """)
    assert done.returncode == 0, done.stderr
    for i in range(3):
        assert re.search(r"^\(pid=\d+, ip=[\d.]+\) atexit-%d$" % i,
                         done.stdout, re.MULTILINE), done.stdout


def test_log_to_driver_false_prints_nothing_of_the_workers(no_cluster):
    done = run_driver("""
        loom.init(num_cpus=1, log_to_driver=False)
        loom.get(chatty.remote(3, "quiet"))
        loom.shutdown()
        print("done", flush=True)
    """)
    assert done.returncode == 0, done.stderr
    assert "done" in done.stdout
    assert "quiet-" not in done.stdout + done.stderr
