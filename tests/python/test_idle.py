# tests/python/test_idle.py
#
# An idle cluster sleeps: Loom's own threads in an idle actor, its fork
# server, the raylet and the head wake only for heartbeats (from raylet to
# head, slower once nothing changes), not to poll. Counted as voluntary context
# switches, summed over each process's threads (/proc/PID/task/*/status).
# gRPC's own threads (pollers, timers) are counted apart and printed: the
# gRPC Debian ships (1.51) wakes them on its own schedule. An idle actor
# makes no use of gRPC's callback API, whose pollers wake every second
# (src/common/async_call.h): all its threads together wake at most 50 times.
# Nor do the head and the raylet, which heartbeat less often once nothing
# changes (src/raylet/gcs_link.h).

import collections
import glob
import os
import time

import pytest

import loom
from conftest import child_pids, process_name, set_env

GRPC_THREADS = {"nexting_thread", "timer_manager", "grpc_global_tim",
                "event_engine", "default-executo", "resolver-execut"}


def _switches(pid):
    """{thread name: voluntary context switches} summed by name."""
    out = {}
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            name = open(f"{task}/comm").read().strip()
            for line in open(f"{task}/status"):
                if line.startswith("voluntary_ctxt_switches:"):
                    out[name] = out.get(name, 0) + int(line.split()[1])
        except OSError:
            pass  # a thread that ended meanwhile
    return out


def _parent(pid):
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])


@loom.remote
class Idle:
    def pid(self):
        return os.getpid()


def test_an_idle_cluster_sleeps(new_cluster):
    new_cluster(num_cpus=2)
    actor = Idle.remote()
    actor_pid = loom.get(actor.pid.remote())
    daemons = {process_name(p): p for p in child_pids(os.getpid())}
    watched = {"head": daemons["loom-gcs"], "raylet": daemons["loom-raylet"],
               "actor": actor_pid, "fork server": _parent(actor_pid)}
    time.sleep(3)  # leases return, reports go to sleep
    before = {k: _switches(p) for k, p in watched.items()}
    time.sleep(10)
    own, grpc = {}, {}
    for k, pid in watched.items():
        after = _switches(pid)
        delta = {n: c - before[k].get(n, 0) for n, c in after.items()}
        own[k] = sum(c for n, c in delta.items() if n not in GRPC_THREADS)
        grpc[k] = sum(c for n, c in delta.items() if n in GRPC_THREADS)
        print(f"{k}: Loom's threads {own[k]}, gRPC's {grpc[k]} "
              f"wakeups in 10 s: {delta}")
    # Before: the actor's loop polled every 50 ms and returned leases every
    # 100 ms (~200), the fork server reaped every 200 ms (50).
    assert own["actor"] <= 5, own
    assert own["fork server"] <= 5, own
    # gRPC's timers (~26 seen); with the callback API's pollers, ~90.
    assert own["actor"] + grpc["actor"] <= 50, (own, grpc)
    # An idle raylet heartbeats every 1.67 s (a third of the head's 5 s
    # timeout; 500 ms while anything changes), and the raylet's memory
    # check, its tick and the head's timeout check ride on those wakeups:
    # ~5 wakeups per heartbeat in each (the loop, gRPC's I/O handed between
    # Loom's queue threads). gRPC's timers add ~25 (told one core), the HTTP
    # servers' listeners ~5 each, the log monitor 0-9. Measured 62-89 for
    # the raylet and 70-79 for the head; ~100 and ~85 while the checks woke
    # between heartbeats and gRPC was told the machine's cores, ~220 and
    # ~250 with the callback API and 500 ms heartbeats.
    total = {k: own[k] + grpc[k] for k in own}
    assert total["raylet"] <= 110, (own, grpc)
    assert total["head"] <= 100, (own, grpc)
    assert loom.get(actor.pid.remote()) == actor_pid  # still serving


def _thread_names(pid):
    names = collections.Counter()
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            names[open(f"{task}/comm").read().strip()] += 1
        except OSError:
            pass  # a thread that ended meanwhile
    return names


@pytest.mark.parametrize("told, pollers", [(None, 1), ("8", 4)])
def test_workers_size_grpc_by_the_cores_they_are_told(new_cluster, monkeypatch,
                                                      told, pollers):
    # gRPC sizes its timer shards and EventEngine threads by the cores it is
    # told, and Loom its call queue's threads (one per two cores, at least
    # two; one for one core). Workers are told 1 (LOOM_GRPC_CORES from the
    # raylet) unless the cluster was started with a number of its own.
    set_env(monkeypatch, "LOOM_GRPC_CORES", told)
    new_cluster(num_cpus=1)
    actor = Idle.remote()
    pid = loom.get(actor.pid.remote())
    environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    assert f"LOOM_GRPC_CORES={told or 1}".encode() in environ
    # Nor does it run gRPC's backup poller: its serve thread always polls.
    assert b"GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS=0" in environ
    names = _thread_names(pid)
    deadline = time.time() + 10
    while "loom-rpc-calls" not in names and time.time() < deadline:
        time.sleep(0.2)  # its first call out (task events) starts them
        names = _thread_names(pid)
    assert names["loom-rpc-calls"] == pollers, names
    assert names["loom-rpc-serve"] == 1, names
    assert "nexting_thread" not in names, names  # no callback API
    if told is not None:  # gRPC took this process's answer, not libgpr's
        assert names["event_engine"] >= int(told), names
    assert loom.get(actor.pid.remote()) == pid



def _tcp(pid, state):
    """(local port, remote port) of pid's TCP sockets in `state` (the
    kernel's hex code: "01" established, "0A" listening)."""
    inodes = set()
    for fd in glob.glob(f"/proc/{pid}/fd/*"):
        try:
            link = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in open(table).read().splitlines()[1:]:
            f = row.split()
            if f[3] == state and f[9] in inodes:
                out.append((int(f[1].rsplit(":", 1)[1], 16),
                            int(f[2].rsplit(":", 1)[1], 16)))
    return out

def test_servers_close_connections_left_idle(new_cluster, monkeypatch):
    # gRPC 1.51 closes an idle client channel's connection only the first
    # time; the servers close what carried no call for LOOM_SERVER_IDLE_MS,
    # so an idle actor holds no connection to its raylet (each cost the
    # raylet ~20 KiB) and the next call connects again.
    monkeypatch.setenv("LOOM_SERVER_IDLE_MS", "3000")
    new_cluster(num_cpus=1)
    actor = Idle.remote()
    pid = loom.get(actor.pid.remote())
    daemons = {process_name(p): p for p in child_pids(os.getpid())}
    raylet = daemons["loom-raylet"]
    raylet_ports = {local for local, _ in _tcp(raylet, "0A")}

    def to_raylet():
        return [c for c in _tcp(pid, "01") if c[1] in raylet_ports]

    assert to_raylet()  # the worker's own link to its node
    deadline = time.time() + 15
    while to_raylet() and time.time() < deadline:
        time.sleep(0.5)
    assert not to_raylet()
    assert loom.get(actor.pid.remote(), timeout=30) == pid
    assert loom.get(Idle.remote().pid.remote(), timeout=60) > 0

