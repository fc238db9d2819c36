# tests/python/test_node_limits.py
#
# Daemons raise their own descriptor limit: a node started from a shell with
# a low soft limit (ulimit -Sn 256, under a higher hard limit) still runs
# with the hard limit, and its workers inherit it.

import resource
import subprocess

from conftest import loom_cli, wait_until


def _open_files_limit(pid):
    """(soft, hard) of "Max open files" in /proc/PID/limits."""
    for line in open(f"/proc/{pid}/limits"):
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError(f"no open-files limit for {pid}")


def _pids_named(name):
    out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def test_daemons_raise_their_descriptor_limit(processes):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard == resource.RLIM_INFINITY or hard > 256, "needs a hard limit above 256"
    cli, root = loom_cli(), processes.session_root
    before = {n: _pids_named(n) for n in ("loom-gcs", "loom-raylet")}

    def low_soft_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    start = subprocess.run(
        [cli, "start", "--head", "--num-cpus", "1", "--node-ip-address",
         "127.0.0.1", "--session-root", root, "--dashboard-port", "-1"],
        env=processes.env(), timeout=120, capture_output=True, text=True,
        preexec_fn=low_soft_limit)
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        new = {n: _pids_named(n) - before[n] for n in before}
        assert new["loom-gcs"] and new["loom-raylet"], new
        for name, pids in new.items():
            for pid in pids:
                assert _open_files_limit(pid)[0] == hard, (name, pid)
        # The raylet's prestarted workers inherit the raised limit.
        raylet = next(iter(new["loom-raylet"]))
        workers = wait_until(
            lambda: [p for p in _pids_named("loom-worker")
                     if int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1]
                            .split()[1]) == raylet],
            what="a worker of the raylet")
        assert _open_files_limit(workers[0])[0] == hard
    finally:
        subprocess.run([cli, "stop", "--session-root", root],
                       env=processes.env(), timeout=120, capture_output=True)
