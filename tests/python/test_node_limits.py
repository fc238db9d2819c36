# tests/python/test_node_limits.py
#
# Daemons raise their own descriptor limit: a node started from a shell with
# a low soft limit (ulimit -Sn 256, under a higher hard limit) still runs
# with the hard limit, and its workers inherit it. A node out of processes
# or descriptors fails actor creation at once with an error naming the
# limit, and serves on once there is room.

import os
import resource
import subprocess
import time
import uuid

import pytest

import loom
from conftest import child_pids, loom_cli, process_name, wait_until


def _start_node(processes, cpus, open_files):
    """`loom start --head` with RLIMIT_NOFILE set to (soft, hard) first."""
    start = subprocess.run(
        [loom_cli(), "start", "--head", "--num-cpus", str(cpus),
         "--node-ip-address", "127.0.0.1", "--session-root",
         processes.session_root, "--dashboard-port", "-1"],
        env=processes.env(), timeout=120, capture_output=True, text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                              open_files))
    assert start.returncode == 0, start.stdout + start.stderr


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

    _start_node(processes, cpus=1, open_files=(256, hard))
    try:
        new = {n: _pids_named(n) - before[n] for n in before}
        assert new["loom-gcs"] and new["loom-raylet"], new
        for name, pids in new.items():
            for pid in pids:
                assert _open_files_limit(pid)[0] == hard, (name, pid)
        # The raylet's prestarted workers inherit the raised limit.
        raylet = next(iter(new["loom-raylet"]))
        # (Other tests' workers may be exiting meanwhile: child_pids passes
        # over processes that go while it reads /proc.)
        workers = wait_until(
            lambda: [p for p in child_pids(raylet)
                     if process_name(p) == "loom-worker"],
            what="a worker of the raylet")
        assert _open_files_limit(workers[0])[0] == hard
    finally:
        subprocess.run([cli, "stop", "--session-root", root],
                       env=processes.env(), timeout=120, capture_output=True)


PIDS_CGROUP = "/sys/fs/cgroup/pids"  # cgroup v1's pids controller


@loom.remote
class Pid:
    def pid(self):
        return os.getpid()


def test_out_of_processes_fails_creation_naming_the_limit(new_cluster):
    if not os.access(PIDS_CGROUP, os.W_OK):
        pytest.skip(f"needs root and cgroup v1's pids controller at "
                    f"{PIDS_CGROUP}")
    new_cluster(num_cpus=2)
    assert loom.get(Pid.remote().pid.remote()) > 0  # fork server warm
    # The head, the raylet and everything they started go into a cgroup
    # that allows no more tasks (processes or threads) than it holds.
    cgroup = f"{PIDS_CGROUP}/loom-test-{uuid.uuid4().hex[:12]}"
    os.mkdir(cgroup)
    try:
        todo = [p for p in child_pids(os.getpid())
                if process_name(p) in ("loom-gcs", "loom-raylet")]
        assert len(todo) == 2, todo
        while todo:
            pid = todo.pop()
            todo += child_pids(pid)
            try:
                with open(f"{cgroup}/cgroup.procs", "w") as f:
                    f.write(str(pid))
            except ProcessLookupError:
                pass  # exited meanwhile
        with open(f"{cgroup}/pids.current") as f:
            full = f.read().strip()
        with open(f"{cgroup}/pids.max", "w") as f:
            f.write(full)
        # A prestarted worker may take one; the others need a fork.
        actors = [Pid.remote() for _ in range(4)]
        errors = []
        for a in actors:
            try:
                loom.get(a.pid.remote(), timeout=60)
            except loom.exceptions.ActorDiedError as e:
                errors.append(str(e))
        assert errors, "every actor started in a full cgroup"
        for e in errors:
            assert "out of processes or threads" in e, e
            assert "pids.max" in e and "RLIMIT_NPROC" in e, e
        # Room again: the node serves on.
        with open(f"{cgroup}/pids.max", "w") as f:
            f.write("max")
        assert loom.get(Pid.remote().pid.remote(), timeout=60) > 0
    finally:
        loom.shutdown()
        with open(f"{cgroup}/cgroup.procs") as f:
            left = f.read().split()
        for pid in left:  # back to the root, so that the cgroup can go
            try:
                with open(f"{PIDS_CGROUP}/cgroup.procs", "w") as f:
                    f.write(pid)
            except ProcessLookupError:
                pass  # it exited meanwhile
        os.rmdir(cgroup)


def test_out_of_descriptors_fails_creation_naming_the_limit(processes):
    cli, root = loom_cli(), processes.session_root
    # The hard limit too: the daemons cannot raise it.
    _start_node(processes, cpus=2, open_files=(300, 300))
    try:
        loom.init(address="auto", _session_root=root)
        # About 5 of the raylet's descriptors each: 150 cannot all start.
        actors = [Pid.remote() for _ in range(150)]
        started, errors = 0, []
        begun = time.monotonic()
        for a in actors:
            try:
                loom.get(a.pid.remote(), timeout=60)
                started += 1
            except loom.exceptions.ActorDiedError as e:
                errors.append(str(e))
        # Before: workers that could not connect were started again and
        # again, and the caller saw only GetTimeoutError.
        assert started >= 10 and errors, (started, errors[:1])
        assert time.monotonic() - begun < 60
        for e in errors:
            assert "out of file descriptors: the raylet" in e, e
            assert "RLIMIT_NOFILE (300)" in e, e
        # Room again once the actors are gone.
        for a in actors:
            loom.kill(a)

        def one_more():
            try:
                return loom.get(Pid.remote().pid.remote(), timeout=30)
            except loom.exceptions.ActorDiedError:
                return None

        wait_until(one_more, timeout=60, what="an actor once there is room")
    finally:
        loom.shutdown()
        subprocess.run([cli, "stop", "--session-root", root],
                       env=processes.env(), timeout=120, capture_output=True)
