"""Loom across three network hosts (namespaces, see hosts.py): the head on
host 1, nodes on hosts 2 and 3, drivers on host 3."""
import json
import re
import subprocess
import sys
import threading
import time

import pytest

import hosts
from hosts import metric, wait_until

MB = 1 << 20


def last_json(out):
    """The last line of a driver's stdout that is a JSON object."""
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no JSON line in the driver's output:\n{out}")


def run_ok(cluster, host, source, timeout=120):
    rc, out, err = cluster.run_driver(host, source, timeout=timeout)
    assert rc == 0, f"driver exited with {rc}\nstdout:\n{out}\nstderr:\n{err}"
    return out, err


def received_bytes(cluster, host):
    return metric(cluster.metrics(host),
                  "loom_object_manager_bytes_received_total")


def sent_bytes(cluster, host):
    return metric(cluster.metrics(host), "loom_object_manager_bytes_sent_total")


# --- The hosts themselves ------------------------------------------------------


def test_hosts_share_no_files_under_tmp_or_dev_shm_and_reach_each_other(net):
    h1, h2, h3 = net.hosts
    for d in ("/tmp", "/dev/shm"):
        h2.run(["sh", "-c", f"echo here > {d}/only-on-host2"], check=True)
        assert h2.run(["cat", f"{d}/only-on-host2"]).stdout == "here\n"
        for other in (h1, h3):
            assert other.run(["test", "-e", f"{d}/only-on-host2"]).returncode \
                == 1, f"{other.name} sees host 2's {d}"
    # The checkout (build/, .venv/) is visible on every host.
    assert h3.run(["test", "-x", hosts.loom_cli()]).returncode == 0
    # Each host has its own address, and reaches the others' over the bridge.
    r = h3.run(["ip", "-4", "-o", "addr", "show", "dev", "eth0"], check=True)
    assert f" {h3.ip}/" in r.stdout
    ping = "import socket; socket.create_connection(('{ip}', {port}), 5)"
    listener = h1.popen([sys.executable, "-c", "import socket, sys; s = socket."
                         "socket(); s.bind(('%s', 0)); s.listen(1); "
                         "print(s.getsockname()[1], flush=True); s.accept()"
                         % h1.ip])
    try:
        port = listener.stdout.readline().strip()
        r = h3.run([sys.executable, "-c", ping.format(ip=h1.ip, port=port)])
        assert r.returncode == 0, r.stderr
    finally:
        listener.kill()
        listener.communicate()


# --- Tasks, objects and actors across hosts ---------------------------------

PYTHON_SPREAD = """
    import collections, json, time
    import loom

    loom.init(address="{address}")
    ip_of = {{n["NodeID"]: n["NodeManagerAddress"] for n in loom.nodes()}}

    @loom.remote
    def where(seconds):
        time.sleep(seconds)
        return loom.get_runtime_context().get_node_id()

    refs = [where.options(scheduling_strategy="SPREAD").remote({seconds})
            for _ in range({n})]
    print(json.dumps(collections.Counter(
        ip_of[n] for n in loom.get(refs, timeout=120))))
"""


def cpp_driver(cluster):
    """Runs `loom-test-driver multihost` on host 3: its output as lists of
    words."""
    r = cluster.net.hosts[2].run([hosts.test_driver_binary(), "multihost",
                                  cluster.address, hosts.SESSION_ROOT],
                                 timeout=180)
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return [line.split() for line in r.stdout.splitlines()]


def spread(words, label):
    return {w[1]: int(w[2]) for w in words if w[0] == label}


@pytest.mark.parametrize("driver", ["python", "cpp"])
def test_spread_tasks_of_50_ms_run_on_every_host(cluster, driver):
    h1, h2, h3 = cluster.net.hosts
    if driver == "python":
        out, _ = run_ok(cluster, h3, PYTHON_SPREAD.format(
            address=cluster.address, seconds=0.05, n=60))
        counts = last_json(out)
    else:
        counts = spread(cpp_driver(cluster), "spread50")
    assert sum(counts.values()) == 60
    assert set(counts) == {h1.ip, h2.ip, h3.ip}, counts
    assert min(counts.values()) >= 3, counts


def test_a_thousand_no_op_spread_tasks_run_on_every_host(cluster):
    # On a fresh cluster (the C++ driver's are run after its 50 ms ones,
    # on warm workers: see test_cpp_driver_moves_objects_...).
    h1, h2, h3 = cluster.net.hosts
    out, _ = run_ok(cluster, h3, PYTHON_SPREAD.format(
        address=cluster.address, seconds=0, n=1000))
    counts = last_json(out)
    assert sum(counts.values()) == 1000
    assert set(counts) == {h1.ip, h2.ip, h3.ip}, counts
    assert min(counts.values()) >= 100, counts


PYTHON_OBJECTS_AND_ACTORS = """
    import json, zlib
    import numpy as np
    import loom

    loom.init(address="{address}")
    ip_of = {{n["NodeID"]: n["NodeManagerAddress"] for n in loom.nodes()}}

    def array():
        return np.random.default_rng(7).integers(0, 256, 100 << 20,
                                                 dtype=np.uint8)

    @loom.remote(resources={{"host2": 1}})
    def make():
        return array(), loom.get_runtime_context().get_node_id()

    @loom.remote(resources={{"host3": 1}})
    def consume(pair):
        a, made_on = pair
        return (zlib.crc32(a), a.nbytes, made_on,
                loom.get_runtime_context().get_node_id())

    crc, size, made_on, read_on = loom.get(consume.remote(make.remote()),
                                           timeout=120)

    @loom.remote(resources={{"host2": 1}})
    class Keeper:
        def __init__(self):
            self.total = 0

        def add(self, k):
            self.total += k
            return self.total, loom.get_runtime_context().get_node_id()

    keeper = Keeper.remote()
    calls = loom.get([keeper.add.remote(k) for k in range(1, 11)], timeout=60)
    print(json.dumps({{
        "crc": crc, "expected_crc": zlib.crc32(array()), "size": size,
        "made_on": ip_of[made_on], "read_on": ip_of[read_on],
        "actor_totals": [t for t, _ in calls],
        "actor_on": sorted({{ip_of[n] for _, n in calls}}),
    }}))
"""


def test_python_driver_moves_objects_and_calls_actors_across_hosts(cluster):
    h1, h2, h3 = cluster.net.hosts
    received_before = received_bytes(cluster, h3)
    sent_before = sent_bytes(cluster, h2)
    out, _ = run_ok(cluster, h3,
                    PYTHON_OBJECTS_AND_ACTORS.format(address=cluster.address))
    r = last_json(out)
    # 100 MB made on host 2 arrived byte for byte on host 3, over the
    # network: host 3's object manager received it, host 2's sent it.
    assert (r["made_on"], r["read_on"]) == (h2.ip, h3.ip)
    assert r["size"] == 100 * MB
    assert r["crc"] == r["expected_crc"]
    assert received_bytes(cluster, h3) - received_before >= 100 * MB
    assert sent_bytes(cluster, h2) - sent_before >= 100 * MB
    # The actor lives on host 2 and keeps its state across calls from 3.
    assert r["actor_on"] == [h2.ip]
    assert r["actor_totals"] == [k * (k + 1) // 2 for k in range(1, 11)]


def test_cpp_driver_moves_objects_and_calls_actors_across_hosts(cluster):
    h1, h2, h3 = cluster.net.hosts
    received_before = received_bytes(cluster, h3)
    words = cpp_driver(cluster)
    counts = spread(words, "spread")
    assert sum(counts.values()) == 1000
    assert set(counts) == {h1.ip, h2.ip, h3.ip}, counts
    assert min(counts.values()) >= 100, counts
    assert ["transfer", "true"] in words, words
    assert received_bytes(cluster, h3) - received_before >= 100 * MB
    assert ["actor", h2.ip, "42"] in words, words


# --- Worker output reaches a driver on another host --------------------------

PRINTS_ON_HOST2 = """
    import os, sys, time
    import loom

    loom.init(address="{address}")

    @loom.remote(resources={{"host2": 1}})
    def shout(marker):
        print(marker)
        return os.getpid()

    pid = loom.get(shout.remote("{marker}"), timeout=60)
    # One write: print() writes its pieces one by one, and the thread that
    # prints the workers' lines could land between them.
    sys.stdout.write(f"DONE {{pid}}\\n")
    sys.stdout.flush()
    time.sleep(60)  # keeps streaming until the test has seen the line
"""


class Lines:
    """A driver's stdout (and stderr), read line by line by threads of
    their own, so that waiting for a line never blocks on a pipe. The
    driver is killed with `kill()`, never waited for with communicate()."""

    def __init__(self, proc):
        self.proc = proc
        self.lines, self.errors = [], []
        self._thread = threading.Thread(
            target=self._read, args=(proc.stdout, self.lines), daemon=True)
        self._thread.start()
        threading.Thread(target=self._read, args=(proc.stderr, self.errors),
                         daemon=True).start()

    @staticmethod
    def _read(pipe, into):
        for line in pipe:
            into.append(line.rstrip("\n"))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def wait_for(self, predicate, timeout, what):
        """The first line predicate(line) accepts; fails the test after
        `timeout` s or when the driver has exited without printing it."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((line for line in list(self.lines) if predicate(line)),
                         None)
            if found is not None:
                return found
            exited = not self._thread.is_alive()
            if exited or time.monotonic() > deadline:
                pytest.fail(f"no {what} within {timeout} s (driver "
                            f"{'exited' if exited else 'running'}); stdout:\n"
                            + "\n".join(self.lines) + "\nstderr:\n"
                            + "\n".join(self.errors))
            time.sleep(0.05)


def test_worker_prints_on_host2_appear_in_the_host3_driver_output(cluster):
    h1, h2, h3 = cluster.net.hosts
    marker = f"hello-from-host2-{time.monotonic_ns()}"
    proc = cluster.start_driver(
        h3, PRINTS_ON_HOST2.format(address=cluster.address, marker=marker))
    out = Lines(proc)
    try:
        done = out.wait_for(lambda line: line.startswith("DONE"), 60,
                            "DONE from the driver")
        expected = f"(pid={done.split()[1]}, ip={h2.ip}) {marker}"
        out.wait_for(lambda line: line == expected, 10,
                     f"the line {expected!r}")
    finally:
        out.kill()


# --- A host cut off during a workload ------------------------------------------

NODE_TIMEOUT_MS = 3000

DRIVER_THROUGH_A_CUT = """
    import json, sys, time
    import loom
    from loom.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    loom.init(address="{address}")
    ip_of = {{n["NodeID"]: n["NodeManagerAddress"] for n in loom.nodes()}}
    host2 = next(n for n, ip in ip_of.items() if ip == "{host2_ip}")

    @loom.remote(resources={{"host3": 1}}, num_cpus=0)
    class Tracker:
        def __init__(self):
            self.started = []

        def start(self, i, node):
            self.started.append((i, node))

        def seen(self):
            return self.started

    @loom.remote(max_retries=3)
    def slow(tracker, i):
        node = loom.get_runtime_context().get_node_id()
        tracker.start.remote(i, node)
        time.sleep(1.5)
        return i, node

    @loom.remote(max_restarts=2, max_task_retries=-1, num_cpus=0)
    class Keeper:
        def where(self):
            return loom.get_runtime_context().get_node_id()

    @loom.remote
    def where():
        return loom.get_runtime_context().get_node_id()

    tracker = Tracker.remote()
    keeper = Keeper.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        host2, soft=True)).remote()
    keeper_before = loom.get(keeper.where.remote(), timeout=60)
    refs = [slow.options(scheduling_strategy="SPREAD").remote(tracker, i)
            for i in range(6)]
    deadline = time.time() + 60
    while not any(n == host2 for _, n in loom.get(tracker.seen.remote())):
        assert time.time() < deadline, "no task started on host 2"
        time.sleep(0.05)
    print("READY", flush=True)
    sys.stdin.readline()  # the test cut host 2
    results = loom.get(refs, timeout=60)
    tasks_done = time.time()
    keeper_after = loom.get(keeper.where.remote(), timeout=60)
    keeper_done = time.time()
    # Host 2 is dead now (the actor moved): hard affinity to it fails.
    try:
        loom.get(where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            host2, soft=False)).remote(), timeout=30)
        affinity = ["no error", ""]
    except Exception as e:  # noqa: BLE001
        affinity = [type(e).__name__, str(e)]
    affinity_done = time.time()
    started = loom.get(tracker.seen.remote())
    started_on = sorted({{ip_of[n] for _, n in started}})
    # Tasks that had started on host 2 and returned from another host.
    retried = sorted(i for i, n in results if n != host2 and
                     (i, host2) in [tuple(s) for s in started])
    print(json.dumps({{
        "results": sorted(i for i, _ in results),
        "tasks_done": tasks_done, "keeper_done": keeper_done,
        "affinity_done": affinity_done,
        "keeper_before": ip_of[keeper_before], "keeper_after": ip_of[keeper_after],
        "affinity": affinity, "host2": host2, "started_on": started_on,
        "retried": retried,
    }}), flush=True)
"""


@pytest.mark.loom_timeout(180)
def test_a_cut_host_fails_over_and_is_fenced_when_mended(make_cluster):
    cluster = make_cluster(node_timeout_ms=NODE_TIMEOUT_MS)
    h1, h2, h3 = cluster.net.hosts
    host2_raylet = cluster.node_of(h2)
    proc = cluster.start_driver(
        h3, DRIVER_THROUGH_A_CUT.format(address=cluster.address,
                                        host2_ip=h2.ip),
        stdin=subprocess.PIPE)
    out = Lines(proc)
    try:
        out.wait_for(lambda line: line == "READY", 90,
                     "READY (tasks running on host 2)")
        h2.cut()
        cut_at = time.time()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        r = json.loads(out.wait_for(lambda line: line.startswith("{"), 90,
                                    "the driver's results"))
    finally:
        out.kill()
    print("after the cut:",
          {k: (v - cut_at if k.endswith("_done") else v) for k, v in r.items()})
    bound = NODE_TIMEOUT_MS / 1000 + 5
    # Every task's result came back; those that had started on host 2 ran
    # again on another host; all within the node timeout + 5 s.
    assert r["results"] == list(range(6))
    assert r["retried"], r
    assert r["tasks_done"] - cut_at <= bound, r["tasks_done"] - cut_at
    # The restartable actor was on host 2 and came back on another host.
    assert r["keeper_before"] == h2.ip
    assert r["keeper_after"] in (h1.ip, h3.ip)
    assert r["keeper_done"] - cut_at <= bound, r["keeper_done"] - cut_at
    # Hard affinity to the dead node: a clear error naming it, at once.
    kind, message = r["affinity"]
    assert kind == "InfeasibleError", r["affinity"]
    assert r["host2"][:12] in message, message
    assert r["affinity_done"] - r["keeper_done"] <= 10
    # The head lists host 2 dead while it is cut.
    cluster.wait_for_nodes(alive=2, dead=1, timeout=10)

    # Mended: host 2's old raylet learns it was declared dead and exits.
    h2.mend()
    wait_until(lambda: not hosts._pid_alive(host2_raylet["pid"]), 30,
               "host 2's fenced raylet to exit")
    assert "fenced by the head" in cluster.raylet_log(h2)
    nodes = cluster.wait_for_nodes(alive=2, dead=1, timeout=10)
    states = {n["ip"]: n["state"] for n in nodes}
    assert states == {h1.ip: "ALIVE", h2.ip: "DEAD", h3.ip: "ALIVE"}
    status = cluster.cli_run("status", "--address", cluster.address)
    assert status.returncode == 0, status.stderr
    assert "2 nodes alive, 1 dead" in status.stdout, status.stdout


# --- A driver killed with -9 ---------------------------------------------------

DRIVER_HOLDING_LEASES_AND_OBJECTS = """
    import time
    import numpy as np
    import loom

    # "auto": the cluster of this host's own session directory (host 3's
    # raylet), with nothing from host 1's file system.
    loom.init(address="auto")

    @loom.remote
    def block(megabytes):
        return np.ones(megabytes << 20, dtype=np.uint8)

    @loom.remote
    def hold():
        time.sleep(600)

    @loom.remote
    class Idle:
        def ping(self):
            return 1

    objects = [block.options(resources={h: 1}).remote(50)
               for h in ("host1", "host2")]
    loom.wait(objects, num_returns=2, timeout=60)
    leases = [hold.options(resources={h: 1}).remote()
              for h in ("host1", "host2")]
    actor = Idle.options(resources={"host2": 1}).remote()
    loom.get(actor.ping.remote(), timeout=60)
    print("READY", flush=True)
    time.sleep(600)
"""


def store_used(cluster, host):
    return metric(cluster.metrics(host), "loom_object_store_used_bytes")


def all_resources_free(cluster):
    nodes = cluster.nodes()
    return all(n["resources"].split(" / ")[0] == n["resources"].split(" / ")[1]
               for n in nodes)


def start_and_kill_driver(cluster):
    """Starts the driver above on host 3, waits until what it holds shows
    on hosts 1 and 2, and kills it with SIGKILL."""
    h1, h2, h3 = cluster.net.hosts
    out = Lines(cluster.start_driver(h3, DRIVER_HOLDING_LEASES_AND_OBJECTS))
    try:
        out.wait_for(lambda line: line == "READY", 90, "READY")
        wait_until(lambda: all(store_used(cluster, h) >= 50 * MB
                               for h in (h1, h2)), 10,
                   "50 MB in the stores of hosts 1 and 2")
        wait_until(lambda: not all_resources_free(cluster), 10,
                   "the driver's leases to show as used resources")
    finally:
        out.kill()  # SIGKILL


def test_a_killed_driver_frees_its_leases_and_actors_on_other_hosts(cluster):
    start_and_kill_driver(cluster)
    wait_until(lambda: all_resources_free(cluster), 30,
               "every node's resources back to full")
    actors = cluster.cli_run("list", "actors", "--address", cluster.address)
    assert actors.returncode == 0, actors.stderr
    rows = [line for line in actors.stdout.splitlines()[1:] if "Idle" in line]
    assert rows and all(" DEAD " in row for row in rows), actors.stdout


def test_a_killed_driver_frees_its_objects_on_other_hosts(cluster):
    h1, h2, _ = cluster.net.hosts
    start_and_kill_driver(cluster)
    wait_until(lambda: all(store_used(cluster, h) < 1 * MB for h in (h1, h2)),
               15, "the stores of hosts 1 and 2 emptied")


# --- The cluster token ---------------------------------------------------------

DRIVER_WITH_AN_ACTOR_ON_HOST2 = """
    import sys
    import loom

    loom.init(address="{address}")

    @loom.remote(resources={{"host2": 1}})
    class Pinger:
        def ping(self):
            return "pong"

    @loom.remote
    def where():
        return loom.get_runtime_context().get_node_id()

    pinger = Pinger.remote()
    assert loom.get(pinger.ping.remote(), timeout=60) == "pong"
    print("READY", flush=True)
    sys.stdin.readline()  # the test probed every daemon
    nodes = {{loom.get(where.options(resources={{h: 1}}).remote(), timeout=60)
              for h in ("host1", "host2", "host3")}}
    print("AFTER", loom.get(pinger.ping.remote(), timeout=60), len(nodes),
          flush=True)
"""

def probe(host, address, service, token):
    """loom-probe (tests/cluster/probe_main.cc) from `host`: every method of
    `service` at `address`, without a token (None) or with `token`:
    {method: status code name}."""
    argv = [hosts.test_binary("loom-probe"), address, service] + \
        ([token] if token else [])
    r = host.run(argv, timeout=120)
    assert r.returncode in (0, 1), f"loom-probe: {r.stderr}"
    return dict(line.split() for line in r.stdout.splitlines())


def refused(cluster, host, daemon="raylet"):
    return metric(cluster.metrics(host, daemon),
                  "loom_rpc_unauthenticated_total")


def test_clients_without_the_token_are_refused_everywhere_and_change_nothing(
        cluster):
    h1, h2, h3 = cluster.net.hosts
    token = cluster.net.env["LOOM_AUTH_TOKEN"]
    wrong = ("0" if token[0] != "0" else "1") + token[1:]
    out = Lines(cluster.start_driver(
        h3, DRIVER_WITH_AN_ACTOR_ON_HOST2.format(address=cluster.address),
        stdin=subprocess.PIPE))
    try:
        out.wait_for(lambda line: line == "READY", 90, "READY")
        # The daemons' ports: the head's, each raylet's, and the worker of
        # the actor on host 2 (its address from the head's log).
        gcs_log = cluster.head.path(cluster.session_dir(cluster.head) +
                                    "/logs/gcs.log").read_text()
        worker = re.findall(r"alive at (\S+)", gcs_log)[-1]
        assert worker.startswith(h2.ip + ":"), worker
        ports = [(cluster.address, "loom.rpc.Gcs")] + [
            (f"{n['ip']}:{n['port']}", "loom.rpc.Raylet")
            for n in cluster.nodes()] + [(worker, "loom.rpc.CoreWorker")]
        assert len(ports) == 5
        before = {h: refused(cluster, h) for h in (h1, h2, h3)}
        gcs_before = refused(cluster, h1, "gcs")
        # Every method on every port refuses calls from another host without
        # the token or with a wrong one.
        calls = {}
        for address, service in ports:
            for name, bad in (("no token", None), ("a wrong token", wrong)):
                codes = probe(h3 if not address.startswith(h3.ip) else h1,
                              address, service, bad)
                assert len(codes) >= 5, codes
                let_in = {m: c for m, c in codes.items()
                          if c != "UNAUTHENTICATED"}
                assert not let_in, f"{address} ({service}) with {name}: {let_in}"
                calls[address] = calls.get(address, 0) + len(codes)
        # Each refusal was counted where it happened; /metrics is read
        # without a token.
        for h in (h1, h2, h3):
            raylet = cluster.node_of(h)
            assert refused(cluster, h) - before[h] >= \
                calls[f"{raylet['ip']}:{raylet['port']}"]
        assert refused(cluster, h1, "gcs") - gcs_before >= \
            calls[cluster.address]
        # The CLI with a wrong token, or none (a session root without one),
        # is refused too.
        h3.run(["mkdir", "-p", "/tmp/no-session"], check=True)
        for bad in (wrong, None):
            r = cluster.cli_run("status", "--address", cluster.address,
                                "--session-root", "/tmp/no-session", host=h3,
                                env={"LOOM_AUTH_TOKEN": bad})
            assert r.returncode != 0, r.stdout
            assert "token" in r.stderr.lower(), r.stderr
        # Nothing changed: three nodes alive, the actor still answers, every
        # host still runs tasks.
        cluster.wait_for_nodes(alive=3, timeout=5)
        out.proc.stdin.write("go\n")
        out.proc.stdin.flush()
        after = out.wait_for(lambda line: line.startswith("AFTER"), 60,
                             "the driver's calls after the probes")
        assert after == "AFTER pong 3", after
    finally:
        out.kill()


# --- runtime_env across hosts ---------------------------------------------------

DRIVER_WITH_A_RUNTIME_ENV = """
    import base64, hashlib, json, os, sys, tempfile, zipfile
    import loom

    # Everything the tasks need lives only in this host's private /tmp.
    root = tempfile.mkdtemp(dir="/tmp")
    wd, mods = os.path.join(root, "project"), os.path.join(root, "mods")
    os.makedirs(os.path.join(wd, "skip"))
    os.makedirs(os.path.join(mods, "extra_mod"))
    with open(os.path.join(wd, "settings.txt"), "w") as f:
        f.write("from the working dir")
    with open(os.path.join(wd, "helper.py"), "w") as f:
        f.write("def hello():\\n    return 'hello from helper'\\n")
    with open(os.path.join(wd, "skip", "big.bin"), "w") as f:
        f.write("excluded")
    with open(os.path.join(mods, "extra_mod", "__init__.py"), "w") as f:
        f.write("VALUE = 7\\n")
    wheel = os.path.join(root, "loomwheel-0.1-py3-none-any.whl")
    files = {{"loomwheel/__init__.py": b"ANSWER = 42\\n",
             "loomwheel-0.1.dist-info/METADATA":
                 b"Metadata-Version: 2.1\\nName: loomwheel\\nVersion: 0.1\\n",
             "loomwheel-0.1.dist-info/WHEEL":
                 b"Wheel-Version: 1.0\\nGenerator: test\\n"
                 b"Root-Is-Purelib: true\\nTag: py3-none-any\\n"}}
    def digest(d):
        raw = hashlib.sha256(d).digest()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    record = "".join("%s,sha256=%s,%d\\n" % (n, digest(d), len(d))
                     for n, d in files.items())
    record += "loomwheel-0.1.dist-info/RECORD,,\\n"
    with zipfile.ZipFile(wheel, "w") as z:
        for n, d in files.items():
            z.writestr(n, d)
        z.writestr("loomwheel-0.1.dist-info/RECORD", record)

    loom.init(address="{address}", runtime_env={{
        "working_dir": wd, "excludes": ["skip"],
        "env_vars": {{"LOOM_TEST_FLAVOUR": "mint"}}}})

    @loom.remote(resources={{"host2": 1}})
    def inspect():
        import helper
        return {{"cwd_file": open("settings.txt").read(),
                "helper": helper.hello(),
                "excluded": os.path.exists(os.path.join("skip", "big.bin")),
                "flavour": os.environ.get("LOOM_TEST_FLAVOUR"),
                "node": loom.get_runtime_context().get_node_id()}}

    @loom.remote(resources={{"host2": 1}},
                 runtime_env={{"py_modules": [os.path.join(mods, "extra_mod")],
                               "pip": [wheel]}})
    def with_modules():
        import extra_mod, loomwheel
        return extra_mod.VALUE, loomwheel.ANSWER, \\
            os.environ.get("LOOM_TEST_FLAVOUR")

    ip_of = {{n["NodeID"]: n["NodeManagerAddress"] for n in loom.nodes()}}
    r = loom.get(inspect.remote(), timeout=120)
    r["node"] = ip_of[r["node"]]
    r["modules"] = loom.get(with_modules.remote(), timeout=300)
    print(json.dumps(r))
"""


def test_a_runtime_env_reaches_a_host_without_the_drivers_files(cluster):
    h1, h2, h3 = cluster.net.hosts
    out, _ = run_ok(cluster, h3, DRIVER_WITH_A_RUNTIME_ENV.format(
        address=cluster.address), timeout=360)
    r = last_json(out)
    assert r["node"] == h2.ip
    assert r["cwd_file"] == "from the working dir"
    assert r["helper"] == "hello from helper"
    assert r["excluded"] is False
    assert r["flavour"] == "mint"
    # py_modules and a wheel built here, installed on host 2 into a venv;
    # the job's env_vars hold under the task's own runtime_env.
    assert r["modules"] == [7, 42, "mint"]


# --- TLS -------------------------------------------------------------------------

SNIFFED_DRIVER = """
import json, loom
loom.init(address="{address}")
marker = "{marker}"

@loom.remote(resources={{"host2": 1}})
def echo(text, blob):
    return text + " " + str(blob.count(marker.encode()))

blob = loom.put((marker * 40000).encode())  # about 1 MiB, pulled by host 2
print(json.dumps({{"echo": loom.get(echo.remote(marker, blob), timeout=60)}}))
"""


class Sniffer:
    """Every frame through the hosts' links (their bridge-side veths, in
    the root namespace), read with a raw packet socket while it runs;
    `hits` counts the frames that hold `marker`."""

    def __init__(self, net, marker):
        import socket  # noqa: PLC0415
        self.marker = marker.encode()
        self.links = {h.veth for h in net.hosts}
        self.hits = 0
        self.frames = 0
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                  socket.ntohs(0x0003))  # ETH_P_ALL
        self.sock.settimeout(0.1)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done.is_set():
            try:
                frame, addr = self.sock.recvfrom(1 << 16)
            except OSError:
                continue
            if addr[0] in self.links:
                self.frames += 1
                self.hits += self.marker in frame

    def stop(self):
        self.done.set()
        self.thread.join()
        self.sock.close()


def sniffed_run(cluster, marker):
    h3 = cluster.net.hosts[2]
    sniffer = Sniffer(cluster.net, marker)
    try:
        out, _ = run_ok(cluster, h3, SNIFFED_DRIVER.format(
            address=cluster.address, marker=marker))
    finally:
        sniffer.stop()
    assert last_json(out)["echo"] == f"{marker} 40000"
    print(f"sniffed: {sniffer.frames} frames, {sniffer.hits} with the marker")
    return sniffer


@pytest.mark.loom_timeout(240)
def test_with_tls_no_payload_is_readable_on_the_wire(make_cluster):
    marker = f"loom-marker-{time.time_ns():x}"
    # Plain first: the sniffer sees the marker (in the task's argument and
    # the pulled object), so it would see it under TLS too if it leaked.
    plain = make_cluster()
    seen = sniffed_run(plain, marker)
    plain.stop()
    assert seen.hits > 0, f"{seen.frames} frames, none with the marker"
    tls = make_cluster(tls=True)
    seen = sniffed_run(tls, marker)
    assert seen.frames > 100, "the sniffer saw no traffic"
    assert seen.hits == 0, f"{seen.hits} frames of {seen.frames} hold it"
    # A driver without the cluster's certificates is refused, saying why.
    h3 = tls.net.hosts[2]
    rc, _, err = tls.run_driver(h3, SNIFFED_DRIVER.format(
        address=tls.address, marker=marker), env={"LOOM_TLS_DIR": None})
    assert rc != 0
    assert "LOOM_TLS_DIR" in err, err
