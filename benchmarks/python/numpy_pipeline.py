#!/usr/bin/env python3
"""A numpy pipeline on a 2-CPU node, with and without thread caps.

Preprocessing tasks (num_cpus=1, two at a time) each make a matrix and
multiply it twice; their results feed two model actors (default options:
no CPU held while running, as in Ray) that multiply each by their weights
twice. Four processes do numpy math at once on two CPUs.

- capped: no thread variable in the environment, so Loom caps each
  worker's math libraries to its lease's CPUs (1 thread each here).
- uncapped: the user sets OMP_NUM_THREADS to the machine's core count, as
  OpenBLAS would choose by itself: Loom then leaves the libraries alone and
  each of the four processes runs a thread per core.

Each mode runs in a driver process of its own (its own private cluster),
the modes alternating, `--rounds` times; the median is reported. Stdout
carries one JSON line per result, as loom-bench's:

    {"name": "numpy_pipeline_capped", "value": 21.3, "unit": "items/s", ...}
    {"name": "numpy_pipeline_uncapped", "value": 12.9, "unit": "items/s", ...}
    {"name": "numpy_pipeline_cap_speedup", "value": 1.65, "unit": "x"}

Each line also gives the runs, and the OpenBLAS thread count the task and
the actors reported (read from the loaded library), so that a line shows
which setting it ran under.

    python benchmarks/python/numpy_pipeline.py
    python benchmarks/python/numpy_pipeline.py --rounds 5 --items 200
    /tmp/loom-ray-venv/bin/python benchmarks/python/numpy_pipeline.py \
        --backend both          # and Ray (numpy_pipeline_ray), ray-venv.sh
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS")


def blas_threads():
    """The thread count of the OpenBLAS loaded in this process (numpy's),
    or None when none is loaded."""
    import ctypes
    paths = set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and "openblas" in os.path.basename(parts[-1]):
                paths.add(parts[-1])
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_",
                     "scipy_openblas_get_num_threads",
                     "openblas_get_num_threads64_", "openblas_get_num_threads"):
            fn = getattr(lib, name, None)
            if fn is not None:
                return int(fn())
    return None


def run_pipeline(backend, num_cpus, items, size, warmup):
    """One driver: a private cluster, then the timed pipeline. Returns
    items/s and the thread counts its workers saw."""
    import importlib
    import numpy as np
    loom = importlib.import_module(backend)  # the same API on both

    loom.init(num_cpus=num_cpus)

    @loom.remote(num_cpus=1)
    def preprocess(seed, n):
        x = np.random.default_rng(seed).standard_normal((n, n))
        x = x @ x.T / n
        return x @ x / n

    @loom.remote(num_cpus=1)
    def threads_in_task():
        return blas_threads(), os.environ.get("OMP_NUM_THREADS")

    class Model:
        def __init__(self, n):
            self.w = np.random.default_rng(0).standard_normal((n, n)) / n

        def predict(self, x):
            y = x @ self.w
            return float((y @ self.w.T).sum())

        def threads(self):
            return blas_threads(), os.environ.get("OMP_NUM_THREADS")

    models = [loom.remote(Model).remote(size) for _ in range(2)]

    def feed(start, count):
        return [models[i % 2].predict.remote(preprocess.remote(i, size))
                for i in range(start, start + count)]

    loom.get(feed(0, warmup))
    start = time.perf_counter()
    loom.get(feed(warmup, items))
    elapsed = time.perf_counter() - start
    seen = {"task": loom.get(threads_in_task.remote()),
            "actors": loom.get([m.threads.remote() for m in models])}
    loom.shutdown()
    return items / elapsed, seen


# Modes: Loom capped and uncapped; Ray as it comes (it sets its workers'
# OMP_NUM_THREADS itself).
BACKEND_OF = {"capped": "loom", "uncapped": "loom", "ray": "ray"}


def child_env(mode):
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    if mode == "uncapped":
        env["OMP_NUM_THREADS"] = str(os.cpu_count())
    return env


def run_child(mode, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--child",
           "--backend", BACKEND_OF[mode], "--num-cpus", str(args.num_cpus), "--items", str(args.items),
           "--size", str(args.size), "--warmup", str(args.warmup)]
    out = subprocess.run(cmd, env=child_env(mode), capture_output=True,
                         text=True, timeout=args.timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{mode} run failed ({out.returncode}):\n"
                           f"{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--items", type=int, default=120)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--backend", choices=("loom", "ray", "both"),
                        default="loom",
                        help="both: Loom's two modes and Ray, in the one "
                        "interpreter ray-venv.sh makes")
    parser.add_argument("--child", action="store_true",
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        rate, seen = run_pipeline(args.backend, args.num_cpus, args.items,
                                  args.size, args.warmup)
        print(json.dumps({"rate": rate, "seen": seen}))
        return 0

    modes = {"loom": ["capped", "uncapped"], "ray": ["ray"],
             "both": ["capped", "uncapped", "ray"]}[args.backend]
    runs = {mode: [] for mode in modes}
    seen = {}
    for r in range(args.rounds):
        # Rotate which mode goes first, so that drift in the machine's
        # load does not favour one.
        order = modes[r % len(modes):] + modes[:r % len(modes)]
        for mode in order:
            result = run_child(mode, args)
            runs[mode].append(round(result["rate"], 3))
            seen[mode] = result["seen"]
            print(f"round {r + 1} {mode}: {result['rate']:.2f} items/s "
                  f"threads {result['seen']}", file=sys.stderr)
    medians = {mode: statistics.median(v) for mode, v in runs.items()}
    for mode in modes:
        print(json.dumps({
            "name": f"numpy_pipeline_{mode}", "value": round(medians[mode], 3),
            "unit": "items/s", "runs": runs[mode],
            "blas_threads_task": seen[mode]["task"][0],
            "blas_threads_actors": [t[0] for t in seen[mode]["actors"]],
            "num_cpus": args.num_cpus, "cores": os.cpu_count(),
            "matrix": args.size, "items": args.items}))
    if "uncapped" in medians:
        print(json.dumps({"name": "numpy_pipeline_cap_speedup",
                          "value": round(medians["capped"] /
                                         medians["uncapped"], 3),
                          "unit": "x"}))
    if "ray" in medians:
        print(json.dumps({"name": "numpy_pipeline_loom_vs_ray",
                          "value": round(medians["capped"] / medians["ray"],
                                         3) if "capped" in medians else None,
                          "unit": "loom/ray"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
