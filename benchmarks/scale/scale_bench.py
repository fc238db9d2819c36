#!/usr/bin/env python3
"""benchmarks/scale: Loom with many nodes, tasks and actors on one machine.

    .venv/bin/python benchmarks/scale/scale_bench.py                # all
    .venv/bin/python benchmarks/scale/scale_bench.py --nodes 10 --only nodes,spread
    .venv/bin/python benchmarks/scale/scale_bench.py --only tasks --tasks 100000

Parts (--only, comma-separated; default all):

  nodes   a head and N-1 more raylets (loom.cluster_utils.Cluster, 1 CPU
          each, small stores), for each N of --nodes: the time from the
          first extra node's start until the head lists every node alive;
          then, with no driver, a --idle-s window: each raylet's CPU (% of
          one core, utime+stime from /proc/PID/stat) and VmRSS, mean and
          max; the head's (loom-gcs) CPU and VmRSS; heartbeats/s (the head's
          loom_gcs_heartbeats_total) and the bytes the head's gRPC port
          received (the TCP connections' bytes_received, from `ss -ti`:
          every RPC, heartbeats the most of it when idle).
  spread  on the same cluster: --spread-tasks no-op tasks with
          scheduling_strategy="SPREAD", each returning its node's id: each
          node's count, min and max over the mean; then, once every node has
          run a task (warm workers), --sleep-tasks SPREAD tasks sleeping
          --sleep-s: seconds from the first submission to the last result,
          beside the ideal (tasks * sleep / N).
  tasks   a one-node cluster (--cpus CPUs): --tasks no-op tasks submitted,
          then all got: seconds, and the head's and raylet's VmRSS before,
          after submitting and after getting.
  actors  a fresh one-node cluster: for each N of --actors, N Python actors
          created, then one no-op call on each, all got:
          actor_creation_per_second = N / elapsed; the head's and raylet's
          VmRSS growth per actor (KiB), each actor process's PSS
          (/proc/PID/smaps_rollup) and threads, mean; then each loom.kill()ed
          and the time until every actor process has exited.
  forks   no Loom: fork_baseline.py, for each N of --actors, a parent
          forking N children in turn, each copying 700 of its pages (a
          Python actor's PSS): the machine's cost per copied page, first
          and last tenth of the children, and children per second, to read
          beside actor creation (on a VM that backs memory lazily, the later
          copies cost several times the first).
  idle    a fresh one-node cluster (--cpus CPUs): --idle-actors Python
          actors, one no-op call on each; after --settle-s, a
          --idle-actors-window-s window over every process descended from
          this driver (the head, the raylet, fork servers, every worker):
          their CPU summed (% of one core, utime+stime from /proc/PID/stat);
          voluntary context switches (wakeups) per 10 s, summed over each
          process's threads (/proc/PID/task/*/status), mean and max per
          actor process and the head's and raylet's; threads per actor.
  kills   on the same cluster: --kill-actors Python actors (no CPU, on the
          driver's node), one no-op call on each; then each loom.kill()ed:
          the seconds until every actor process has exited and the head's
          CPU (% of one core) meanwhile. Every raylet follows the head's
          events, so this is where their fan-out shows.
  cpp     `loom-bench --filter actor_creation_per_second --actors A,...`:
          C++ actors, for each A of --actors a fresh 2-CPU private cluster,
          one warm-up actor, then A actors each answering its first call.
  pulls   a head and one more node on loopback: a task on the other node
          puts --pull-objects numpy arrays of --pull-mib MiB and returns
          their refs; the driver (on the head's node) gets them all at once:
          small_objects_pulled_gigabytes = bytes / seconds of that get,
          median of --pull-rounds after one warm-up round (fresh objects
          each round).

One JSON line per result on stdout, {"name", "value", "unit"} and sometimes
more fields; errors go to stderr and make the exit status 1. Every cluster
is torn down, whatever happens.
"""
import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request

from proc_stats import (alive, cpu_seconds, descendants, pss_kib, rss_mib,
                        status_field, wakeups, wakeups_between)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MIB = 1 << 20
PARTS = ("nodes", "spread", "kills", "tasks", "actors", "forks", "idle",
         "cpp", "pulls")


def emit(name, value, unit, **extra):
    record = {"name": name, "value": round(value, 3), "unit": unit}
    record.update(extra)
    print(json.dumps(record), flush=True)


def warn(message):
    print(f"scale_bench: {message}", file=sys.stderr, flush=True)


def raise_fd_limit():
    """Each node holds a lifeline pipe in this process, each actor a
    connection: the soft limit goes up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---- the head -------------------------------------------------------------

def head_metric(cluster, name):
    """The sum of a metric's samples on the head's /metrics (its port is
    the second field of the session's gcs.ready)."""
    with open(os.path.join(cluster.head_node.session_dir, "gcs.ready")) as f:
        port = f.read().split()[1]
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                  timeout=10).read().decode()
    return sum(float(m) for m in re.findall(
        rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def head_bytes_received(cluster, field="bytes_received"):
    """{peer: bytes} the head's gRPC port has received (or, with field
    "bytes_sent", sent) on each of its established TCP connections
    (`ss -ti`); None without a working ss."""
    if shutil.which("ss") is None:
        return None
    port = cluster.address.rsplit(":", 1)[1]
    run = subprocess.run(["ss", "-tinHO", "state", "established",
                          f"sport = :{port}"], capture_output=True,
                         text=True, timeout=30)
    if run.returncode != 0:
        warn(f"ss failed: {run.stderr.strip()}")
        return None
    out = run.stdout
    received = {}
    for line in out.splitlines():
        fields = line.split()
        got = re.search(rf"\b{field}:(\d+)", line)
        if len(fields) >= 4:
            received[fields[3]] = int(got.group(1)) if got else 0
    return received


# ---- clusters -------------------------------------------------------------

def node_args(args, cpus):
    return {"num_cpus": cpus, "num_gpus": 0,
            "object_store_memory": args.store_mib * MIB}


def start_cluster(args, n):
    """A head and n-1 more raylets, started --join-wave at a time; returns
    (cluster, seconds from the first extra node's start until the head
    lists all n alive)."""
    from loom.cluster_utils import Cluster
    head_args = node_args(args, 1)
    if args.heartbeat_ms:
        head_args["heartbeat_ms"] = args.heartbeat_ms
    if args.node_timeout_ms:
        head_args["node_timeout_ms"] = args.node_timeout_ms
    cluster = Cluster(head_node_args=head_args)
    try:
        start = time.monotonic()
        added = 0
        while added < n - 1:
            wave = min(args.join_wave or n, n - 1 - added)
            for _ in range(wave):
                cluster.add_node(wait=False, **node_args(args, 1))
            added += wave
            cluster.wait_for_nodes(timeout=args.join_timeout)
        return cluster, time.monotonic() - start
    except BaseException:
        cluster.shutdown()
        raise


def raylet_pids(cluster):
    return [node.pids[-1] for node in cluster.list_all_nodes()]


def gcs_pid(cluster):
    return cluster.head_node.pids[0]


# ---- nodes ----------------------------------------------------------------

def measure_idle(cluster, n, args):
    """Daemons' CPU and RSS, heartbeats and the head's received bytes over
    an idle window (no driver)."""
    time.sleep(args.settle_s)
    raylets, gcs = raylet_pids(cluster), gcs_pid(cluster)
    pids = raylets + [gcs]
    cpu0 = {p: cpu_seconds(p) for p in pids}
    beats0 = head_metric(cluster, "loom_gcs_heartbeats_total")
    bytes0 = head_bytes_received(cluster)
    t0 = time.monotonic()
    time.sleep(args.idle_s)
    cpu1 = {p: cpu_seconds(p) for p in pids}
    beats1 = head_metric(cluster, "loom_gcs_heartbeats_total")
    bytes1 = head_bytes_received(cluster)
    window = time.monotonic() - t0
    pct = {p: 100 * (cpu1[p] - cpu0[p]) / window for p in pids}
    rss = {p: rss_mib(p) for p in pids}
    tag = f"{n}_nodes"
    emit(f"raylet_cpu_percent_mean_{tag}",
         statistics.mean(pct[p] for p in raylets), "% of a core")
    emit(f"raylet_cpu_percent_max_{tag}", max(pct[p] for p in raylets),
         "% of a core")
    emit(f"raylet_rss_mib_mean_{tag}",
         statistics.mean(rss[p] for p in raylets), "MiB")
    emit(f"raylet_rss_mib_max_{tag}", max(rss[p] for p in raylets), "MiB")
    emit(f"head_cpu_percent_{tag}", pct[gcs], "% of a core")
    emit(f"head_rss_mib_{tag}", rss[gcs], "MiB")
    beats = (beats1 - beats0) / window
    emit(f"head_heartbeats_per_second_{tag}", beats, "heartbeats/s")
    emit_head_traffic(bytes0, bytes1, window, beats, tag)


def emit_head_traffic(bytes0, bytes1, window, beats, tag):
    """What the head's gRPC port received over the window, per second and
    per heartbeat."""
    if bytes0 is None or bytes1 is None:
        warn("no head_grpc_bytes_received_* figures: ss is missing or failed")
        return
    # Connections open at both ends of the window; one opened within it
    # counts from zero, one closed within it is lost (none should, idle).
    received = sum(b - bytes0.get(peer, 0) for peer, b in bytes1.items())
    emit(f"head_grpc_bytes_received_per_second_{tag}", received / window,
         "B/s", connections=len(bytes1))
    if beats > 0:
        emit(f"head_grpc_bytes_received_per_heartbeat_{tag}",
             received / window / beats, "B",
             note="all RPCs received over the heartbeats' count")


# ---- spread ---------------------------------------------------------------

def where_function():
    import loom

    @loom.remote
    def where(sleep_s=0.0):
        if sleep_s:
            time.sleep(sleep_s)
        return loom.get_runtime_context().get_node_id()

    return where.options(scheduling_strategy="SPREAD")


def pinger_class():
    """An actor class whose ping() returns its process id."""
    import loom

    @loom.remote
    class Pinger:
        def ping(self):
            return os.getpid()

    return Pinger


def warm(where, node_ids, args):
    """Rounds of SPREAD tasks until every node has run one; the nodes that
    have."""
    import loom
    seen = set()
    for _ in range(args.warm_rounds):
        refs = [where.remote(args.sleep_s) for _ in range(2 * len(node_ids))]
        seen.update(loom.get(refs, timeout=args.timeout))
        if seen >= node_ids:
            break
    missing = node_ids - seen
    if missing:
        warn(f"{len(missing)} of {len(node_ids)} nodes ran no task in "
             f"{args.warm_rounds} warm-up rounds")
    return seen & node_ids


def measure_spread(cluster, n, args):
    import loom
    cluster.connect(log_to_driver=False)
    try:
        node_ids = {node.node_id for node in cluster.list_all_nodes()}
        where = where_function()
        warmed = warm(where, node_ids, args)
        tag = f"{n}_nodes"
        start = time.monotonic()
        got = loom.get([where.remote() for _ in range(args.spread_tasks)],
                       timeout=args.timeout)
        elapsed = time.monotonic() - start
        counts = {node: 0 for node in node_ids}
        for node in got:
            counts[node] = counts.get(node, 0) + 1
        mean = args.spread_tasks / len(counts)
        emit(f"spread_noop_tasks_per_second_{tag}",
             args.spread_tasks / elapsed, "tasks/s", warm_nodes=len(warmed))
        emit(f"spread_min_over_mean_{tag}", min(counts.values()) / mean,
             "ratio", tasks=args.spread_tasks,
             idle_nodes=sum(1 for c in counts.values() if c == 0))
        emit(f"spread_max_over_mean_{tag}", max(counts.values()) / mean,
             "ratio", tasks=args.spread_tasks)
        # Warm again: leases left idle after the no-op burst went back, and
        # a lone lease would take a backlog alone.
        warmed = warm(where, node_ids, args)
        sent0 = head_bytes_received(cluster, "bytes_sent")
        beats0 = head_metric(cluster, "loom_gcs_heartbeats_total")
        start = time.monotonic()
        loom.get([where.remote(args.sleep_s)
                  for _ in range(args.sleep_tasks)], timeout=args.timeout)
        elapsed = time.monotonic() - start
        sent1 = head_bytes_received(cluster, "bytes_sent")
        beats = head_metric(cluster, "loom_gcs_heartbeats_total") - beats0
        if sent0 is not None and sent1 is not None and beats > 0:
            # Heartbeat replies (the view) are most of what the head sends
            # while nodes' loads change; task results go driver to worker.
            sent = sum(v - sent0.get(k, 0) for k, v in sent1.items())
            emit(f"head_grpc_bytes_sent_per_heartbeat_busy_{tag}",
                 sent / beats, "B", heartbeats=int(beats),
                 seconds=round(elapsed, 2))
        ideal = args.sleep_tasks * args.sleep_s / n
        emit(f"spread_sleep_tasks_seconds_{tag}", elapsed, "s",
             tasks=args.sleep_tasks, sleep_s=args.sleep_s,
             ideal_s=round(ideal, 3), over_ideal=round(elapsed / ideal, 2),
             warm_nodes=len(warmed))
    finally:
        # Nodes the head declared dead meanwhile (missed heartbeats).
        try:
            dead = sum(1 for node in loom.nodes() if not node["Alive"])
            emit(f"spread_dead_nodes_{n}_nodes", dead, "nodes")
        except Exception as e:  # noqa: BLE001 - the part's error matters more
            warn(f"cannot list nodes: {e}")
        loom.shutdown()


# ---- tasks ----------------------------------------------------------------

def one_node_cluster(args):
    from loom.cluster_utils import Cluster
    cluster = Cluster(head_node_args={"num_cpus": args.cpus, "num_gpus": 0})
    try:
        cluster.connect(log_to_driver=False)
    except BaseException:
        cluster.shutdown()
        raise
    return cluster


def daemon_rss(cluster):
    """(head MiB, raylet MiB, this driver MiB)."""
    return (rss_mib(gcs_pid(cluster)), rss_mib(raylet_pids(cluster)[0]),
            rss_mib(os.getpid()))


def measure_tasks(args):
    import loom
    cluster = one_node_cluster(args)
    try:
        @loom.remote
        def noop():
            return None

        loom.get([noop.remote() for _ in range(100)], timeout=args.timeout)
        before = daemon_rss(cluster)
        start = time.monotonic()
        refs = [noop.remote() for _ in range(args.tasks)]
        submitted = time.monotonic() - start
        queued = daemon_rss(cluster)
        loom.get(refs, timeout=max(args.timeout, args.tasks / 500))
        elapsed = time.monotonic() - start
        after = daemon_rss(cluster)
        tag = f"{args.tasks}_tasks"
        emit(f"queued_tasks_submit_seconds_{tag}", submitted, "s")
        emit(f"queued_tasks_seconds_{tag}", elapsed, "s",
             tasks_per_s=round(args.tasks / elapsed, 1), cpus=args.cpus)
        for i, who in enumerate(("head", "raylet", "driver")):
            emit(f"queued_tasks_{who}_rss_mib_{tag}", after[i], "MiB",
                 before=round(before[i], 1), queued=round(queued[i], 1))
        del refs
    finally:
        cluster.shutdown()


# ---- pulls ----------------------------------------------------------------

def measure_pulls(args):
    import numpy as np

    import loom
    from loom.cluster_utils import Cluster
    size = args.pull_mib * MIB
    store = max(2 * args.pull_objects * size, 512 * MIB)
    cluster = Cluster(head_node_args={"num_cpus": 1, "num_gpus": 0,
                                      "object_store_memory": store})
    try:
        cluster.add_node(num_cpus=1, num_gpus=0, object_store_memory=store,
                         resources={"far": 1})
        cluster.wait_for_nodes(timeout=60)
        cluster.connect(log_to_driver=False)

        @loom.remote(resources={"far": 1})
        def make(n, nbytes):
            return [loom.put(np.full(nbytes, i % 251, dtype=np.uint8))
                    for i in range(n)]

        rates = []
        for round_ in range(args.pull_rounds + 1):
            refs = loom.get(make.remote(args.pull_objects, size),
                            timeout=args.timeout)
            start = time.monotonic()
            values = loom.get(refs, timeout=args.timeout)
            elapsed = time.monotonic() - start
            for i, v in enumerate(values):
                if v.nbytes != size or v[0] != i % 251 or v[-1] != i % 251:
                    raise RuntimeError(f"object {i} came back wrong")
            if round_ > 0:  # the first touches the store's pages: warm-up
                rates.append(args.pull_objects * size / elapsed / 1e9)
            del values, refs
        emit("small_objects_pulled_gigabytes", statistics.median(rates),
             "GB/s", objects=args.pull_objects, mib=args.pull_mib,
             runs=[round(r, 3) for r in rates])
    finally:
        loom.shutdown()
        cluster.shutdown()


# ---- actors ---------------------------------------------------------------

def actor_round(Pinger, cluster, n, args):
    import loom
    head0, raylet0, _ = daemon_rss(cluster)
    start = time.monotonic()
    actors = [Pinger.remote() for _ in range(n)]
    pids = loom.get([a.ping.remote() for a in actors],
                    timeout=max(args.timeout, n / 5))
    elapsed = time.monotonic() - start
    head1, raylet1, _ = daemon_rss(cluster)
    tag = f"{n}_actors"
    emit(f"actor_creation_per_second_{tag}", n / elapsed, "actors/s",
         seconds=round(elapsed, 3))
    emit(f"head_rss_kib_per_actor_{tag}", (head1 - head0) * 1024 / n, "KiB")
    emit(f"raylet_rss_kib_per_actor_{tag}", (raylet1 - raylet0) * 1024 / n,
         "KiB")
    emit(f"actor_pss_mib_mean_{tag}",
         statistics.mean(pss_kib(p) for p in pids) / 1024, "MiB",
         processes=len(set(pids)))
    emit(f"actor_threads_mean_{tag}",
         statistics.mean(status_field(p, "Threads") for p in pids), "threads")
    kill_round(actors, pids, args)


def kill_round(actors, pids, args, tag=""):
    """loom.kill of each actor, then waits for their processes to exit."""
    import loom
    n = len(actors)
    start = time.monotonic()
    for a in actors:
        loom.kill(a)
    actors.clear()
    deadline = start + max(args.timeout, n / 5)
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{sum(map(alive, pids))} of {n} killed actor "
                               f"processes still run after "
                               f"{deadline - start:.0f} s")
        time.sleep(0.05)
    emit(f"actor_kill_seconds_{n}_actors{tag}", time.monotonic() - start, "s",
         note="loom.kill of each until every actor process exited")


def measure_kills(cluster, n, args):
    import loom
    from loom.util.scheduling_strategies import \
        NodeAffinitySchedulingStrategy
    cluster.connect(log_to_driver=False)
    try:
        # On the driver's node, as benchmarks/dashboard placed them when the
        # kills were first timed: the other raylets only follow the events.
        here = NodeAffinitySchedulingStrategy(
            loom.get_runtime_context().get_node_id(), soft=False)
        Pinger = pinger_class().options(num_cpus=0, scheduling_strategy=here)
        start = time.monotonic()
        actors = [Pinger.remote() for _ in range(args.kill_actors)]
        pids = loom.get([a.ping.remote() for a in actors],
                        timeout=max(args.timeout, len(actors) / 5))
        emit(f"actor_creation_per_second_{len(actors)}_actors_{n}_nodes",
             len(actors) / (time.monotonic() - start), "actors/s")
        gcs = gcs_pid(cluster)
        cpu0, t0 = cpu_seconds(gcs), time.monotonic()
        kill_round(actors, pids, args, tag=f"_{n}_nodes")
        emit(f"head_cpu_percent_during_kills_{n}_nodes",
             100 * (cpu_seconds(gcs) - cpu0) / (time.monotonic() - t0), "%")
    finally:
        loom.shutdown()


def measure_actors(args):
    import loom
    cluster = one_node_cluster(args)
    try:
        Pinger = pinger_class()
        # The job's fork server starts with its first worker: not counted.
        first = Pinger.remote()
        loom.get(first.ping.remote(), timeout=args.timeout)
        loom.kill(first)
        for n in args.actors:
            actor_round(Pinger, cluster, n, args)
    finally:
        cluster.shutdown()


# ---- idle actors -----------------------------------------------------------

def sample(pids):
    """{pid: (cpu seconds, wakeups)} of those still there."""
    out = {}
    for p in pids:
        try:
            out[p] = (cpu_seconds(p), wakeups(p))
        except OSError:
            pass  # exited
    return out


def measure_idle_actors(args):
    import loom
    n = args.idle_actors
    cluster = one_node_cluster(args)
    try:
        Idler = pinger_class()
        actors = [Idler.remote() for _ in range(n)]
        actor_pids = set(loom.get([a.ping.remote() for a in actors],
                                  timeout=max(args.timeout, n / 5)))
        time.sleep(args.settle_s)
        pids = descendants(os.getpid())
        missing = actor_pids - set(pids)
        if missing:
            raise RuntimeError(f"{len(missing)} of {len(actor_pids)} actor "
                               "processes are not descendants of the driver")
        before = sample(pids)
        t0 = time.monotonic()
        time.sleep(args.idle_actors_window_s)
        after = sample(pids)
        window = time.monotonic() - t0
        emit_idle_actors(cluster, n, actor_pids, before, after, window)
        del actors
    finally:
        cluster.shutdown()


def emit_idle_actors(cluster, n, actor_pids, before, after, window):
    """The window's CPU and wakeups: processes present at both ends only
    (one that exited within it is warned of, its CPU lost)."""
    both = [p for p in before if p in after]
    gone = len(before) - len(both)
    if gone:
        warn(f"idle: {gone} of {len(before)} processes exited in the window")
    pct = {p: 100 * (after[p][0] - before[p][0]) / window for p in both}
    per10 = {p: wakeups_between(before[p][1], after[p][1]) * 10 / window
             for p in both}
    head, raylet = gcs_pid(cluster), raylet_pids(cluster)[0]
    actors = [p for p in both if p in actor_pids]
    others = [p for p in both if p not in actor_pids and p not in
              (head, raylet)]
    tag = f"{n}_actors"
    emit(f"idle_actors_cpu_percent_{tag}", sum(pct.values()),
         "% of one core", window_s=round(window, 1), processes=len(both),
         head=round(pct.get(head, 0), 3), raylet=round(pct.get(raylet, 0), 3),
         actors=round(sum(pct[p] for p in actors), 3),
         others=round(sum(pct[p] for p in others), 3),
         other_processes=len(others),
         target="under 10 in total at 2000 actors")
    emit(f"idle_actor_wakeups_per_10s_{tag}",
         statistics.mean(per10[p] for p in actors), "wakeups/10 s",
         max=round(max(per10[p] for p in actors), 1),
         over_50=sum(1 for p in actors if per10[p] > 50),
         processes=len(actors), note="voluntary context switches, "
         "all threads of each actor process")
    for who, pid in (("raylet", raylet), ("head", head)):
        if pid in per10:
            emit(f"idle_{who}_wakeups_per_10s_{tag}", per10[pid],
                 "wakeups/10 s")
    emit(f"idle_actor_threads_{tag}",
         statistics.mean(status_field(p, "Threads") for p in actors),
         "threads", note="mean per actor process")


# ---- C++ actors -------------------------------------------------------------

def program_records(argv, timeout, what):
    """Runs a benchmark program; its JSON lines, parsed (it failing raises)."""
    run = subprocess.run(argv, capture_output=True, text=True,
                         timeout=timeout)
    if run.returncode != 0:
        raise RuntimeError(f"{what} failed: {run.stderr.strip()}")
    return [json.loads(line) for line in run.stdout.splitlines()]


def measure_cpp(args):
    # The build's (an installed package holds no loom-bench).
    dirs = [os.path.join(REPO, "build", "bin"), os.environ.get("LOOM_BIN_DIR")]
    found = [os.path.join(d, "loom-bench") for d in dirs if d]
    found = [b for b in found if os.path.exists(b)]
    if not found:
        raise RuntimeError("build/bin/loom-bench is missing (make bench)")
    counts_arg = ",".join(str(a) for a in args.actors)
    for record in program_records(
            [found[0], "--filter", "actor_creation_per_second", "--actors",
             counts_arg], 600 + 2 * sum(args.actors), "loom-bench"):
        emit(f"cpp_{record['name']}", record["value"], record["unit"],
             note="loom-bench: C++ actors on a 2-CPU cluster, one round")


def measure_forks(args):
    for record in program_records(
            [sys.executable, os.path.join(HERE, "fork_baseline.py"),
             "--children", ",".join(str(a) for a in args.actors)],
            600 + 0.1 * sum(args.actors), "fork_baseline.py"):
        emit(**record)


# ---- main -----------------------------------------------------------------

def counts(text):
    return [int(x) for x in text.split(",") if x]


def parse_args():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(PARTS),
                    help="parts to run, comma-separated: " + ",".join(PARTS))
    ap.add_argument("--nodes", type=counts, default=[10, 100, 300],
                    help="cluster sizes for nodes, spread and kills (10,100,300)")
    ap.add_argument("--store-mib", type=int, default=64,
                    help="each node's object store in the N-node clusters")
    ap.add_argument("--heartbeat-ms", type=int, default=0,
                    help="raylets' heartbeat period (0: the raylet's)")
    ap.add_argument("--node-timeout-ms", type=int, default=0,
                    help="how long the head waits for a silent node before "
                    "declaring it dead (0: Cluster's 5000)")
    ap.add_argument("--join-wave", type=int, default=50,
                    help="nodes started at once (0: all)")
    ap.add_argument("--join-timeout", type=float, default=300)
    ap.add_argument("--settle-s", type=float, default=2.0,
                    help="wait before an idle window (after the join; "
                    "in part idle, after the actors' calls)")
    ap.add_argument("--idle-s", type=float, default=10.0)
    ap.add_argument("--spread-tasks", type=int, default=10_000)
    ap.add_argument("--sleep-tasks", type=int, default=2_000)
    ap.add_argument("--sleep-s", type=float, default=0.05)
    ap.add_argument("--warm-rounds", type=int, default=10)
    ap.add_argument("--tasks", type=int, default=1_000_000,
                    help="queued no-op tasks (part tasks)")
    ap.add_argument("--cpus", type=int, default=os.cpu_count(),
                    help="CPUs of the one-node cluster (tasks, actors, "
                    "idle)")
    ap.add_argument("--actors", type=counts, default=[100, 1000, 2000])
    ap.add_argument("--kill-actors", type=int, default=1000,
                    help="actors killed over the N-node cluster (kills)")
    ap.add_argument("--idle-actors", type=int, default=2000,
                    help="idle Python actors (part idle)")
    ap.add_argument("--idle-actors-window-s", type=float, default=30.0,
                    help="the idle part's window (--idle-s is the nodes')")
    ap.add_argument("--pull-objects", type=int, default=1000)
    ap.add_argument("--pull-mib", type=int, default=1)
    ap.add_argument("--pull-rounds", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=300,
                    help="seconds any one get may take (more for big ones)")
    args = ap.parse_args()
    args.only = [p for p in args.only.split(",") if p]
    unknown = set(args.only) - set(PARTS)
    if unknown:
        ap.error(f"unknown parts: {', '.join(sorted(unknown))}")
    return args


def run_part(name, fn, *a):
    """Runs one part; an error is printed and counted, not raised."""
    try:
        fn(*a)
        return 0
    except Exception as e:  # noqa: BLE001 - report and go on
        warn(f"{name} failed: {type(e).__name__}: {e}")
        return 1


def run_cluster_parts(args, n):
    try:
        cluster, join_s = start_cluster(args, n)
    except Exception as e:  # noqa: BLE001 - report and go on
        warn(f"starting {n} nodes failed: {type(e).__name__}: {e}")
        return 1
    failed = 0
    try:
        if "nodes" in args.only:
            emit(f"join_seconds_{n}_nodes", join_s, "s",
                 wave=args.join_wave or n)
            failed += run_part(f"nodes at {n}", measure_idle, cluster, n,
                               args)
        if "spread" in args.only:
            failed += run_part(f"spread at {n}", measure_spread, cluster, n,
                               args)
        if "kills" in args.only:
            failed += run_part(f"kills at {n}", measure_kills, cluster, n,
                               args)
    finally:
        cluster.shutdown()
    return failed


def main():
    args = parse_args()
    raise_fd_limit()
    failed = 0
    if {"nodes", "spread", "kills"} & set(args.only):
        for n in args.nodes:
            failed += run_cluster_parts(args, n)
    if "tasks" in args.only:
        failed += run_part("tasks", measure_tasks, args)
    if "actors" in args.only:
        failed += run_part("actors", measure_actors, args)
    if "forks" in args.only:
        failed += run_part("forks", measure_forks, args)
    if "idle" in args.only:
        failed += run_part("idle", measure_idle_actors, args)
    if "cpp" in args.only:
        failed += run_part("cpp", measure_cpp, args)
    if "pulls" in args.only:
        failed += run_part("pulls", measure_pulls, args)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
