#!/usr/bin/env python3
"""Ray's `ray microbenchmark` workloads, run on Loom and/or Ray.

Each workload has the name and shape of its namesake in Ray's
`ray/_private/ray_perf.py` (same batch sizes, same arguments, same
multiplier, so a value reads like the figure `ray microbenchmark` prints),
with a short timed loop instead of Ray's 10 s pause and 4 x 2 s runs, so that
the suite finishes in a minute or two on a small machine.

A name carries Ray's only where the two backends do the same work on the
same path ("like for like"): the Plasma_Store calls put and get a 100 KiB
array, which both keep in their shared-memory store (Ray's own script puts
0, which Ray's put sends to the store and Loom keeps in the owner's
memory). Figures that are Loom's but not like for like carry a `loom_` name
(`loom_single_client_put_calls_inline`: Ray's put(0)), run on both backends,
and are never held against a target.

    python ray_perf.py                        # Loom then Ray, then a comparison
    python ray_perf.py --backend ray --duration 1
    python ray_perf.py --filter actor         # names containing "actor"

Stdout carries one JSON line per result,

    {"name": "single_client_tasks_sync", "value": 1234.5, "unit": "calls/s",
     "backend": "loom", "like_for_like": true}

or `"error": "..."` in place of `"value"` when a workload fails; with both
backends, also one `"unit": "loom/ray"` line per workload. A table goes to
stderr. The exit status is non-zero when a workload fails, when a backend
that was asked for cannot be imported, or when no name matches the filter.

Each backend runs in its own subprocess (`--json-only`), so that one
runtime's state cannot affect the other, and so that a workload that hangs
or kills its process costs only that workload: the rest run in a new one.

Only API that Loom and Ray share is used: init(num_cpus=), shutdown(),
remote (functions and classes, .options(num_cpus=, max_concurrency=)), get,
put, wait(refs, num_returns=, timeout=), async actor methods, ObjectRefs and
actor handles inside lists, and calls from inside tasks and actors.
"""

import argparse
import dataclasses
import gc
import importlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, List, Tuple

BACKENDS = ("loom", "ray")

# Exit status of a --json-only child whose backend cannot be imported.
EXIT_UNAVAILABLE = 3
# Exit status of a --json-only child whose watchdog fired.
EXIT_TIMED_OUT = 4

# Targets for Loom / Ray: 2x on call rates, parity on put bandwidth.
CALL_RATE_TARGET = 2.0
BANDWIDTH_TARGET = 1.0

# Calls each `work` task of n_n_actor_calls_async makes (Ray's n).
N_N_CALLS_PER_TASK = 5000

# Bytes of the value the Plasma_Store calls put and get: at Loom's inline
# limit (runtime/core_worker.h), so that with pickle's header it goes to the
# store, as every put does on Ray.
STORE_VALUE_BYTES = 100 * 1024


# ---------------------------------------------------------------------------
# Remote functions and classes, defined once per backend.


def define_remotes(rt):
    """Returns the remote functions and classes of Ray's ray_perf, on `rt`.

    They close over `rt` (the backend module) and over each other, so that
    code running in a worker calls the same backend as the driver.
    """

    def small_value():
        return b"ok"

    small_value = rt.remote(small_value)

    def create_object_containing_ref():
        return [rt.put(1) for _ in range(10000)]

    create_object_containing_ref = rt.remote(create_object_containing_ref)

    class Actor:
        def small_value(self):
            return b"ok"

        def small_value_arg(self, x):
            return b"ok"

        def small_value_batch(self, n):
            rt.get([small_value.remote() for _ in range(n)])

    class AsyncActor:
        async def small_value(self):
            return b"ok"

        async def small_value_with_arg(self, x):
            return b"ok"

    class Client:
        def __init__(self, servers):
            self.servers = servers if isinstance(servers, list) else [servers]

        def small_value_batch(self, n):
            refs = []
            for server in self.servers:
                refs.extend(server.small_value.remote() for _ in range(n))
            rt.get(refs)

    def stream_items(n):
        for _ in range(n):
            yield b"ok"

    stream_items = rt.remote(num_returns="streaming")(stream_items)

    def work(actors):
        n = N_N_CALLS_PER_TASK
        rt.get([actors[i % len(actors)].small_value.remote() for i in range(n)])

    return Remotes(
        small_value=small_value,
        create_object_containing_ref=create_object_containing_ref,
        # Ray declares Actor and Client with @ray.remote(num_cpus=0) and
        # AsyncActor with the default.
        actor=rt.remote(Actor).options(num_cpus=0),
        actor_concurrent=rt.remote(Actor).options(num_cpus=0,
                                                  max_concurrency=16),
        async_actor=rt.remote(AsyncActor),
        client=rt.remote(Client).options(num_cpus=0),
        work=rt.remote(work),
        stream_items=stream_items,
    )


@dataclasses.dataclass
class Remotes:
    small_value: object
    create_object_containing_ref: object
    actor: object
    actor_concurrent: object
    async_actor: object
    client: object
    work: object
    stream_items: object


@dataclasses.dataclass
class Context:
    rt: object  # the backend module
    remotes: Remotes
    num_cpus: int


# ---------------------------------------------------------------------------
# Workloads. Each setup function prepares its state and returns the call to
# time and how many operations one call counts for. That count is Ray's
# multiplier, so values read like `ray microbenchmark`'s: where Ray counts a
# batch of 1000 tasks as one (tasks_and_get_batch, wait_1k_refs) the unit
# is batches/s.

Setup = Callable[[Context], Tuple[Callable[[], object], float]]


@dataclasses.dataclass
class Workload:
    name: str
    unit: str
    target: float
    setup: Setup
    # Loom and Ray do the same work on the same path (store or inline), so
    # the ratio compares like with like. Only these meet a target.
    like_for_like: bool = True


WORKLOADS: List[Workload] = []


def workload(name, unit="calls/s", target=CALL_RATE_TARGET,
             like_for_like=True):
    def register(setup):
        WORKLOADS.append(Workload(name, unit, target, setup, like_for_like))
        return setup

    return register


def store_value(c):
    """A written 100 KiB numpy array, put: in the store on both backends
    (checked on Loom, whose small puts stay in the owner's memory; every
    Ray put goes to its plasma store)."""
    import numpy as np

    ref = c.rt.put(np.ones(STORE_VALUE_BYTES, dtype=np.uint8))
    private = getattr(c.rt, "_private", None)
    if hasattr(private, "store_mapping"):  # Loom
        arr = c.rt.get(ref)
        start, size = private.store_mapping()
        address = arr.__array_interface__["data"][0]
        if not start <= address < start + size:
            raise RuntimeError("a 100 KiB put is not in the object store")
    return ref


@workload("single_client_get_calls_Plasma_Store")
def _get_calls(c):
    value = store_value(c)
    return (lambda: c.rt.get(value)), 1


@workload("single_client_put_calls_Plasma_Store")
def _put_calls(c):
    import numpy as np

    store_value(c)
    arr = np.ones(STORE_VALUE_BYTES, dtype=np.uint8)
    return (lambda: c.rt.put(arr)), 1


# Ray's Plasma_Store calls as Ray's script runs them, with the value 0: Ray
# puts it in its store, Loom keeps it in the owner's memory. What a Loom user
# gets for a small put, but not like for like.
@workload("loom_single_client_get_calls_inline", like_for_like=False)
def _get_calls_inline(c):
    value = c.rt.put(0)
    return (lambda: c.rt.get(value)), 1


@workload("loom_single_client_put_calls_inline", like_for_like=False)
def _put_calls_inline(c):
    return (lambda: c.rt.put(0)), 1


@workload("single_client_put_gigabytes", unit="GB/s", target=BANDWIDTH_TARGET)
def _put_gigabytes(c):
    import numpy as np

    # Ray's: pages never written, so reading them costs nothing.
    arr = np.zeros(100 * 1024 * 1024, dtype=np.int64)  # 800 MiB
    # Ray counts each put as 0.8 GB.
    return (lambda: c.rt.put(arr)), 8 * 0.1


@workload("single_client_put_gigabytes_written", unit="GB/s",
          target=BANDWIDTH_TARGET)
def _put_gigabytes_written(c):
    import numpy as np

    # The same with every page written: each put reads 800 MiB of memory.
    arr = np.ones(100 * 1024 * 1024, dtype=np.int64)
    return (lambda: c.rt.put(arr)), 8 * 0.1


@workload("single_client_tasks_and_get_batch", unit="batches/s")
def _tasks_and_get_batch(c):
    f = c.remotes.small_value
    return (lambda: c.rt.get([f.remote() for _ in range(1000)])), 1


@workload("single_client_get_object_containing_10k_refs")
def _get_object_containing_10k_refs(c):
    ref = c.remotes.create_object_containing_ref.remote()
    return (lambda: c.rt.get(ref)), 1


@workload("single_client_wait_1k_refs", unit="batches/s")
def _wait_1k_refs(c):
    f = c.remotes.small_value

    def run():
        not_ready = [f.remote() for _ in range(1000)]
        for _ in range(1000):
            _, not_ready = c.rt.wait(not_ready, num_returns=1, timeout=None)

    return run, 1


@workload("placement_group_create/removal", unit="groups/s", target=0)
def _placement_group_create_removal(c):
    # Ray's: create a batch of one-bundle groups, wait for each, remove them.
    util = importlib.import_module(c.rt.__name__ + ".util")
    n = 100

    def run():
        pgs = [util.placement_group([{"CPU": 0.001}]) for _ in range(n)]
        for pg in pgs:
            pg.wait(timeout_seconds=30)
        for pg in pgs:
            util.remove_placement_group(pg)

    return run, n


@workload("single_client_tasks_sync")
def _tasks_sync(c):
    f = c.remotes.small_value
    return (lambda: c.rt.get(f.remote())), 1


@workload("single_client_tasks_async")
def _tasks_async(c):
    f = c.remotes.small_value
    return (lambda: c.rt.get([f.remote() for _ in range(1000)])), 1000


@workload("multi_client_tasks_async")
def _multi_client_tasks_async(c):
    n, m = 10000, 4
    actors = [c.remotes.actor.remote() for _ in range(m)]

    def run():
        c.rt.get([a.small_value_batch.remote(n) for a in actors])

    return run, n * m


@workload("1_1_actor_calls_sync")
def _actor_calls_sync(c):
    a = c.remotes.actor.remote()
    return (lambda: c.rt.get(a.small_value.remote())), 1


@workload("1_1_actor_calls_async")
def _actor_calls_async(c):
    return call_batches(c, c.remotes.actor.remote())


@workload("1_1_actor_calls_concurrent")
def _actor_calls_concurrent(c):
    return call_batches(c, c.remotes.actor_concurrent.remote())


@workload("1_n_actor_calls_async")
def _one_to_n_actor_calls_async(c):
    n = 5000
    servers = [c.remotes.actor.remote() for _ in range(half_cpus(c))]
    client = c.remotes.client.remote(servers)

    def run():
        c.rt.get(client.small_value_batch.remote(n))

    return run, n * len(servers)


@workload("n_n_actor_calls_async")
def _n_to_n_actor_calls_async(c):
    m = 4
    actors = [c.remotes.actor.remote() for _ in range(half_cpus(c))]
    work = c.remotes.work

    def run():
        c.rt.get([work.remote(actors) for _ in range(m)])

    return run, N_N_CALLS_PER_TASK * m


@workload("1_1_async_actor_calls_sync")
def _async_actor_calls_sync(c):
    a = c.remotes.async_actor.remote()
    return (lambda: c.rt.get(a.small_value.remote())), 1


@workload("1_1_async_actor_calls_async")
def _async_actor_calls_async(c):
    return call_batches(c, c.remotes.async_actor.remote())


# Not in Ray's ray_perf: a streaming generator task (num_returns="streaming")
# yielding 1000 small values, each read by the caller as it comes.
@workload("streaming_generator_items", unit="items/s", target=0)
def _streaming_generator_items(c):
    n, f = 1000, c.remotes.stream_items

    def run():
        for ref in f.remote(n):
            c.rt.get(ref)

    return run, n


def call_batches(c, actor):
    """Ray's "calls async": 1000 calls to one actor, then one get of all."""

    def run():
        c.rt.get([actor.small_value.remote() for _ in range(1000)])

    return run, 1000


def half_cpus(c):
    """Ray's `multiprocessing.cpu_count() // 2`, at least one."""
    return max(1, c.num_cpus // 2)


# ---------------------------------------------------------------------------
# Timing, and the in-process runner (--json-only).


def measure(fn, multiplier, duration):
    """Warms up, then calls fn for at least `duration` seconds.

    Returns operations per second. Like Ray's timeit, the timed loop calls fn
    in steps of about a tenth of a second, so the clock is read rarely; a
    call slower than the whole budget still runs once in each phase.
    """
    warmup = min(1.0, max(0.2, 0.3 * duration))
    count = 0
    start = time.perf_counter()
    while True:
        fn()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= warmup:
            break
    step = max(1, int(count * 0.1 / elapsed))

    count = 0
    start = time.perf_counter()
    while True:
        for _ in range(step):
            fn()
        count += step
        elapsed = time.perf_counter() - start
        if elapsed >= duration:
            return multiplier * count / elapsed


def emit(record):
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def import_backend(name):
    """Imports the backend module; returns (module, None) or (None, why)."""
    if name == "ray":
        # Before ray is imported: no usage-stats banner or prompt.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        return importlib.import_module(name), None
    except Exception as e:  # ImportError, or a broken extension module
        return None, f"{type(e).__name__}: {e}"


def init_backend(name, rt, num_cpus):
    if name == "ray":
        import logging

        rt.init(num_cpus=num_cpus, address="local", include_dashboard=False,
                log_to_driver=False, logging_level=logging.ERROR)
    else:
        rt.init(num_cpus=num_cpus)


class Watchdog:
    """Ends the process when one workload runs past its time limit.

    A hung get() cannot be interrupted from Python, so the watchdog reports
    the workload as failed and exits; the parent starts a new process for the
    workloads that remain.
    """

    def __init__(self, backend, timeout):
        self._backend = backend
        self._timeout = timeout
        self._timer = None

    def arm(self, w):
        self.disarm()
        self._timer = threading.Timer(self._timeout, self._fire, (w,))
        self._timer.daemon = True
        self._timer.start()

    def disarm(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self, w):
        emit({"name": w.name, "error": f"timed out after {self._timeout:g} s",
              "backend": self._backend, "like_for_like": w.like_for_like})
        os._exit(EXIT_TIMED_OUT)


def run_in_process(args, workloads):
    """Runs `workloads` on one backend in this process: JSON lines only."""
    rt, why = import_backend(args.backend)
    if rt is None:
        print(f"ray_perf: cannot import {args.backend!r}: {why}",
              file=sys.stderr)
        return EXIT_UNAVAILABLE
    try:
        init_backend(args.backend, rt, args.num_cpus)
        context = Context(rt, define_remotes(rt), args.num_cpus)
    except Exception as e:
        why = f"init failed: {type(e).__name__}: {e}"
        print(f"ray_perf: {args.backend}: {why}", file=sys.stderr)
        for w in workloads:
            emit({"name": w.name, "error": why, "backend": args.backend,
                  "like_for_like": w.like_for_like})
        return 1
    watchdog = Watchdog(args.backend, args.timeout)
    failed = False
    for w in workloads:
        record = {"name": w.name}
        watchdog.arm(w)
        try:
            fn, multiplier = w.setup(context)
            value = measure(fn, multiplier, args.duration)
            record.update(value=round(value, 3), unit=w.unit)
        except Exception as e:
            record["error"] = f"{type(e).__name__}: {e}"
            failed = True
        fn = None  # drop the workload's refs and actors before the next
        gc.collect()
        watchdog.disarm()
        record["backend"] = args.backend
        record["like_for_like"] = w.like_for_like
        emit(record)
        time.sleep(0.2)  # let dropped actors and objects go
    rt.shutdown()
    return 1 if failed else 0


# ---------------------------------------------------------------------------
# The parent: one child process per backend, then the comparison.


@dataclasses.dataclass
class BackendRun:
    name: str
    available: bool = True
    results: Dict[str, dict] = dataclasses.field(default_factory=dict)


def run_backend(args, name, workloads):
    """Runs `workloads` on `name` in child processes; returns a BackendRun.

    Results are echoed to stdout as they arrive. When a child dies, the
    workload it was on is recorded as failed and a new child takes the rest.
    """
    run = BackendRun(name)
    by_name = {w.name: w for w in workloads}
    remaining = [w.name for w in workloads]
    while remaining:
        before = len(remaining)
        code = run_child(args, name, remaining, run)
        if code == EXIT_UNAVAILABLE and not run.results:
            run.available = False
            return run
        remaining = [n for n in remaining if n not in run.results]
        if not remaining or code == 0:
            break  # done, or a clean exit that skipped some: do not loop
        if code == EXIT_TIMED_OUT and len(remaining) < before:
            continue  # the child reported the workload that hung
        # The child died on the first workload it did not report.
        record = {"name": remaining[0],
                  "error": f"backend process exited with status {code}",
                  "backend": name,
                  "like_for_like": by_name[remaining[0]].like_for_like}
        run.results[remaining[0]] = record
        emit(record)
        remaining = remaining[1:]
    return run


def run_child(args, name, names, run):
    command = [sys.executable, os.path.abspath(__file__), "--json-only",
               "--backend", name, "--duration", str(args.duration),
               "--num-cpus", str(args.num_cpus), "--timeout", str(args.timeout),
               "--workloads", ",".join(names)]
    # A session of its own, so that on a hang the runtime's daemons go too.
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    # Backstop for a watchdog that cannot run (a call holding the GIL).
    limit = args.timeout + 30
    killer = threading.Timer(limit, kill_group, (child,))
    killer.daemon = True
    killer.start()
    for line in child.stdout:
        killer.cancel()
        record = parse_record(line)
        if record is None:
            sys.stderr.write(line)  # the runtime wrote to stdout
        else:
            run.results[record["name"]] = record
            emit(record)
            if not sys.stdout.isatty():
                print(f"ray_perf: {name}: {describe(record)}", file=sys.stderr)
        killer = threading.Timer(limit, kill_group, (child,))
        killer.daemon = True
        killer.start()
    killer.cancel()
    code = child.wait()
    kill_group(child)  # anything the runtime left behind
    return code


def kill_group(child):
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def parse_record(line):
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and "name" in record else None


def describe(record):
    if "error" in record:
        return f"{record['name']}: error: {record['error']}"
    return f"{record['name']}: {format_value(record['value'])} {record['unit']}"


def format_value(value):
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def compare(workloads, loom, ray):
    """Prints the loom/ray ratio lines; returns the table rows."""
    rows = []
    for w in workloads:
        a, b = loom.results.get(w.name), ray.results.get(w.name)
        ratio = None
        if a and b and "value" in a and "value" in b and b["value"] > 0:
            ratio = a["value"] / b["value"]
            emit({"name": w.name, "value": round(ratio, 3), "unit": "loom/ray",
                  "like_for_like": w.like_for_like})
        rows.append((w, cell(a), cell(b), ratio))
    return rows


def cell(record):
    if record is None:
        return "-"
    if "error" in record:
        return "error"
    return format_value(record["value"])


def print_comparison(rows):
    """The table on stderr. Only like-for-like rows are held against their
    target; the others show the ratio and say why they are not."""
    header = (f"{'workload':<46}{'loom':>12}{'ray':>12}{'loom/ray':>10}"
              f"{'like':>6}{'target':>9}  {'unit':<10}")
    print("\n" + header + "\n" + "-" * (len(header) + 14), file=sys.stderr)
    for w, a, b, ratio in rows:
        shown = "-" if ratio is None else f"{ratio:.2f}x"
        like = "yes" if w.like_for_like else "no"
        if not w.like_for_like:
            target, mark = "n/a", "not like for like"
        elif not w.target:
            target, mark = "-", ""
        else:
            target = f">={w.target:g}x"
            mark = ("" if ratio is None else
                    "ok" if ratio >= w.target else "BELOW TARGET")
        print(f"{w.name:<46}{a:>12}{b:>12}{shown:>10}{like:>6}{target:>9}"
              f"  {w.unit:<10}{mark}", file=sys.stderr)


def print_single(workloads, run):
    print(f"\n{'workload':<46}{run.name:>14}{'like':>6}  unit",
          file=sys.stderr)
    for w in workloads:
        record = run.results.get(w.name)
        like = "yes" if w.like_for_like else "no"
        print(f"{w.name:<46}{cell(record):>14}{like:>6}  {w.unit}",
              file=sys.stderr)
        if record and "error" in record:
            print(f"    {record['error']}", file=sys.stderr)


def choose_backends(args):
    """Returns (backends to run, backends that must be available)."""
    if args.backend == "both":
        return list(BACKENDS), list(BACKENDS)
    if args.backend is not None:
        return [args.backend], [args.backend]
    if importlib.util.find_spec("ray") is not None:
        return list(BACKENDS), []
    return ["loom"], ["loom"]


def run_parent(args, workloads):
    backends, required = choose_backends(args)
    runs = {}
    status = 0
    for name in backends:
        run = run_backend(args, name, workloads)
        if not run.available:
            hint = (" (build and install the client: python_bindings/README.md)"
                    if name == "loom" else " (pip install ray)")
            print(f"ray_perf: {name} is not importable; skipped{hint}",
                  file=sys.stderr)
            if name in required:
                status = 1
        elif any("error" in r for r in run.results.values()):
            status = 1
        runs[name] = run
    available = [r for r in runs.values() if r.available]
    if not available:
        print("ray_perf: no backend could run", file=sys.stderr)
        return 1
    if len(backends) == 2:
        print_comparison(compare(workloads, runs["loom"], runs["ray"]))
    else:
        print_single(workloads, available[0])
    return status


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Ray's ray_perf microbenchmarks on Loom and/or Ray.")
    p.add_argument("--backend", choices=("loom", "ray", "both"),
                   help="default: both when ray is importable, else loom")
    p.add_argument("--filter", default="",
                   help="run only workloads whose name contains this")
    p.add_argument("--duration", type=float, default=2.0,
                   help="seconds of each timed loop (default 2)")
    p.add_argument("--num-cpus", type=int, default=os.cpu_count() or 1,
                   help="num_cpus passed to init (default: this machine's)")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds before one workload counts as hung")
    p.add_argument("--list", action="store_true",
                   help="print the workload names and exit")
    p.add_argument("--json-only", action="store_true",
                   help="run one backend in this process, JSON lines only")
    p.add_argument("--workloads", help=argparse.SUPPRESS)  # comma-separated
    args = p.parse_args(argv)
    if args.json_only and args.backend not in BACKENDS:
        p.error("--json-only needs --backend loom or --backend ray")
    if args.duration <= 0 or args.num_cpus <= 0 or args.timeout <= 0:
        p.error("--duration, --num-cpus and --timeout must be positive")
    return args


def select(args):
    chosen = [w for w in WORKLOADS if args.filter in w.name]
    if args.workloads:
        names = set(args.workloads.split(","))
        chosen = [w for w in chosen if w.name in names]
    return chosen


def main(argv=None):
    args = parse_args(argv)
    workloads = select(args)
    if args.list:
        for w in workloads:
            print(w.name if w.like_for_like else
                  f"{w.name} (not like for like)")
        return 0
    if not workloads:
        print(f"ray_perf: no workload matches {args.filter!r}", file=sys.stderr)
        return 2
    if args.json_only:
        return run_in_process(args, workloads)
    return run_parent(args, workloads)


if __name__ == "__main__":
    sys.exit(main())
