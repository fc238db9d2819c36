"""Chaos: a driver runs 10,000 tasks with known answers (some passing 1 MiB
arrays between tasks), a restartable actor with counted calls and a
placement group, on a head on Redis plus 2 raylets, while this test kills at
random: workers (kill -9), one raylet, then the head (kill -9, started again
on its port). Every result must be right, none lost, and the actor's count
within [calls, calls + retries].

Run by ctest (label `chaos`, `make test`); pytest skips it otherwise (-m
"not chaos" in pytest.ini). More load: LOOM_CHAOS_TASKS (default 10000),
LOOM_CHAOS_SEED (default: random, printed). LOOM_CHAOS_KEEP_LOGS=DIR copies
the session logs there.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import _free_port_below_ephemeral, loom_cli, wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.loom_timeout(300)]

DRIVER = r"""
import json, os, sys, time
import numpy as np
import loom
from loom.util.placement_group import placement_group
from loom.util.scheduling_strategies import PlacementGroupSchedulingStrategy

N, COUNT_FILE = int(os.environ["CHAOS_N"]), os.environ["CHAOS_COUNT_FILE"]
GATE = os.environ["CHAOS_GATE"]  # the last quarter waits for the kills
loom.init(address="auto")

@loom.remote(max_retries=20)
def square(x):
    return x * x

@loom.remote(max_retries=20)
def make_array(i):
    return np.full(131072, i, dtype=np.int64)   # 1 MiB

@loom.remote(max_retries=20)
def total(a):
    return int(a.sum())

@loom.remote(max_restarts=-1, max_task_retries=-1)
class Counter:
    # Counts in a file, so that the count outlives restarts; a call
    # retried after a crash may count twice.
    def __init__(self, path):
        self.path = path
    def incr(self):
        with open(self.path, "a") as f:
            f.write("x\n")
        with open(self.path) as f:
            return sum(1 for _ in f)

counter = Counter.remote(COUNT_FILE)
pg = placement_group([{"CPU": 1}])
assert pg.wait(60)
in_pg = PlacementGroupSchedulingStrategy(pg, 0)

wrong, calls, start = [], 0, time.time()
batch = 500
batches = (N + batch - 1) // batch
for lo in range(0, N, batch):
    if lo // batch == 3 * batches // 4:
        while not os.path.exists(GATE):
            time.sleep(0.05)
    hi = min(N, lo + batch)
    refs = [square.remote(i) for i in range(lo, hi)]
    chains = [(i, total.remote(make_array.remote(i)))
              for i in range(lo, hi, 50)]
    pg_refs = [(i, square.options(scheduling_strategy=in_pg).remote(i))
               for i in range(lo, hi, 100)]
    acts = [counter.incr.remote() for _ in range(5)]
    calls += len(acts)
    for i, v in zip(range(lo, hi), loom.get(refs, timeout=240)):
        if v != i * i:
            wrong.append(("square", i, v))
    for i, r in chains:
        v = loom.get(r, timeout=240)
        if v != i * 131072:
            wrong.append(("chain", i, v))
    for i, r in pg_refs:
        v = loom.get(r, timeout=240)
        if v != i * i:
            wrong.append(("pg", i, v))
    loom.get(acts, timeout=240)
    print(json.dumps({"done": hi}), flush=True)
with open(COUNT_FILE) as f:
    count = sum(1 for _ in f)
print(json.dumps({"wrong": wrong[:20], "n_wrong": len(wrong), "calls": calls,
                  "count": count, "seconds": time.time() - start}),
      flush=True)
loom.kill(counter)
"""


def _procs(marker):
    """pid -> (ppid, argv) of the processes that carry `marker`."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if marker.encode() not in (d / "environ").read_bytes():
                continue
            argv = (d / "cmdline").read_bytes().split(b"\0")
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out[int(d.name)] = (ppid, [a.decode(errors="replace") for a in argv])
    return out


def _workers(marker, raylet_pid):
    """The worker processes under a raylet (children of its fork server)."""
    procs = _procs(marker)
    forkservers = {p for p, (pp, argv) in procs.items() if pp == raylet_pid}
    return [p for p, (pp, _) in procs.items() if pp in forkservers]


def _start(cli, env, args):
    r = subprocess.run([cli, "start", "--node-ip-address", "127.0.0.1"] + args,
                       env=env, timeout=120, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _pids(root):
    return [int(p) for p in
            (Path(root) / "session_latest" / "pids").read_text().split()]


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _tails(driver, roots, lines=40):
    """What a failed run leaves to read: the driver's stderr and the end of
    every daemon's log."""
    out = []
    if driver is not None:
        if driver.poll() is None:
            driver.kill()
        out.append("driver stderr:\n" + driver.stderr.read()[-4000:])
    for root in roots:
        for name in ("gcs.log", "raylet.log", "workers.err"):
            log = Path(root) / "session_latest" / "logs" / name
            if not log.exists():
                continue
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"{log}:\n" + "\n".join(text))
    return "\n".join(out)


def test_nothing_is_lost_under_kills(processes, persistent_redis, tmp_path,
                                     monkeypatch):
    seed = int(os.environ.get("LOOM_CHAOS_SEED") or random.randrange(1 << 30))
    n = int(os.environ.get("LOOM_CHAOS_TASKS") or 10000)
    rng = random.Random(seed)
    print(f"chaos: seed {seed}, {n} tasks")
    cli = loom_cli()
    monkeypatch.setenv("CHAOS_N", str(n))
    monkeypatch.setenv("CHAOS_COUNT_FILE", str(tmp_path / "count"))
    gate = tmp_path / "gate"
    monkeypatch.setenv("CHAOS_GATE", str(gate))
    env = processes.env()
    head_root = processes.session_root
    roots = [tempfile.mkdtemp(prefix="lc-", dir="/tmp") for _ in range(2)]
    port = _free_port_below_ephemeral()
    address = f"127.0.0.1:{port}"
    killed = []
    driver = None
    passed = False
    try:
        _start(cli, env, ["--head", "--port", str(port), "--num-cpus", "2",
                          "--session-root", head_root, "--storage",
                          persistent_redis.url])
        token = str(Path(head_root) / "session_latest" / "auth_token")
        for root in roots:
            _start(cli, env, ["--address", address, "--num-cpus", "2",
                              "--session-root", root, "--auth-token-file",
                              token])
        gcs_pid = _pids(head_root)[0]
        gcs_argv = Path(f"/proc/{gcs_pid}/cmdline").read_bytes().split(b"\0")[:-1]
        raylets = [_pids(head_root)[1]] + [_pids(r)[0] for r in roots]
        driver = processes.start_driver(DRIVER)
        lines = []

        def progress():
            return sum(1 for line in lines if '"done"' in line)

        # Read the driver's progress without blocking the killer.
        reader = threading.Thread(
            target=lambda: [lines.append(line) for line in driver.stdout],
            daemon=True)
        reader.start()
        batches = (n + 499) // 500
        raylet_killed = head_killed = False
        recovery = None
        start = time.monotonic()
        while driver.poll() is None and time.monotonic() - start < 240:
            time.sleep(rng.uniform(0.2, 0.6))
            done = progress()
            workers = [w for r in raylets[:2 if raylet_killed else 3]
                       for w in _workers(processes.marker, r)]
            if workers:
                victim = rng.choice(workers)
                _kill(victim)
                killed.append(("worker", victim, round(time.monotonic() - start, 1)))
            if not raylet_killed and done >= batches // 3:
                _kill(raylets[2])  # a raylet that is not the driver's
                raylet_killed = True
                killed.append(("raylet", raylets[2], round(time.monotonic() - start, 1)))
            if raylet_killed and not head_killed and done >= 2 * batches // 3:
                _kill(gcs_pid)
                wait_until(lambda: not Path(f"/proc/{gcs_pid}").exists(), 10)
                killed.append(("head", gcs_pid, round(time.monotonic() - start, 1)))
                time.sleep(rng.uniform(0.2, 1.0))
                restarted_at = time.monotonic()
                # The same command and storage (`loom start` passes it in
                # the environment: argv is public), as a supervisor would.
                head = subprocess.Popen([a.decode() for a in gcs_argv],
                                        env=dict(env, LOOM_STORAGE=persistent_redis.url),
                                        stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL,
                                        start_new_session=True)
                processes._popens.append(head)
                head_killed = True
                # The last quarter runs after the restart, while workers
                # are still being killed.
                before = progress()
                gate.touch()
                wait_until(lambda: progress() > before or
                           driver.poll() is not None, timeout=120,
                           what="progress after the head restart")
                recovery = time.monotonic() - restarted_at
        driver.wait(timeout=120)
        reader.join(timeout=10)
        err = driver.stderr.read()
        print(f"chaos: killed {killed}; recovery after the head restart "
              f"{recovery if recovery is None else round(recovery, 2)} s")
        assert driver.returncode == 0, f"driver failed:\n{err[-4000:]}"
        result = json.loads(lines[-1])
        print(f"chaos: {result}")
        assert result["n_wrong"] == 0, result["wrong"]
        # Each kill can cut short at most one batch of 5 calls, which the
        # restarted actor then runs again.
        assert result["calls"] <= result["count"] <= \
            result["calls"] + 5 * len(killed), result
        assert raylet_killed and head_killed, "the run ended before every kill"
        passed = True
    finally:
        keep = os.environ.get("LOOM_CHAOS_KEEP_LOGS")
        for i, root in enumerate([head_root] + roots if keep else []):
            logs = Path(root) / "session_latest" / "logs"
            if logs.exists():
                shutil.copytree(logs, Path(keep) / str(i), dirs_exist_ok=True)
        if not passed:
            print(f"chaos: killed {killed}")
            print(_tails(driver, [head_root] + roots))
        for root in [head_root] + roots:
            subprocess.run([cli, "stop", "--session-root", root], env=env,
                           check=False, timeout=120, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        for root in roots:  # the head's is the fixture's to remove
            shutil.rmtree(root, ignore_errors=True)
