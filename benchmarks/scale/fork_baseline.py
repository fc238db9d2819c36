#!/usr/bin/env python3
"""benchmarks/scale/fork_baseline.py: what this machine charges for the
memory a forked worker makes its own, with no Loom in the way.

    .venv/bin/python benchmarks/scale/fork_baseline.py --children 100,1000,2000

A parent holding --parent-mib MiB of written memory (a fork server's heap)
forks each child in turn, as a fork server forks workers; the child writes
one byte in each of --pages of the parent's pages (a Python actor copies
about 700: its PSS, 2.8 MiB) and stays alive. Printed for each N of
--children, one JSON line each: the mean microseconds per copied page over
the first and the last tenth of the children, and children per second
(fork plus copies, one after another).

Why: on a VM whose host backs guest memory lazily (and takes back the pages
the guest frees), a page the guest has not used lately costs a host fault
on first touch. Then the copies of the later children cost several times
those of the first, with no process doing more work: actor creation cannot
stay flat from 100 to 2,000 actors on such a machine, whatever Loom does.
This prints that cost beside `scale_bench.py --only actors`.
"""
import argparse
import json
import os
import signal
import time

PAGE = 4096


def emit(name, value, unit, **extra):
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit,
                      **extra}), flush=True)


def one_round(n, pages, parent_mib):
    heap = bytearray(os.urandom(parent_mib << 20))  # written: all resident
    stride = max(1, len(heap) // PAGE // pages) * PAGE
    offsets = range(0, min(len(heap), pages * stride), stride)
    read_end, write_end = os.pipe()
    results = os.fdopen(read_end)
    children, costs = [], []
    start = time.monotonic()
    try:
        for _ in range(n):
            pid = os.fork()
            if pid == 0:  # the child: copy its pages, report, wait
                try:
                    t = time.perf_counter()
                    for off in offsets:
                        heap[off] = 1
                    us = (time.perf_counter() - t) * 1e6 / len(offsets)
                    os.write(write_end, f"{us:.3f}\n".encode())
                    signal.pause()
                finally:
                    os._exit(0)
            children.append(pid)
            costs.append(float(results.readline()))
        elapsed = time.monotonic() - start
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        for pid in children:
            os.waitpid(pid, 0)
        results.close()
        os.close(write_end)
    tenth = max(1, n // 10)
    tag = f"{n}_children"
    emit(f"fork_copy_us_per_page_first_tenth_{tag}",
         sum(costs[:tenth]) / tenth, "us", pages=len(offsets))
    emit(f"fork_copy_us_per_page_last_tenth_{tag}",
         sum(costs[-tenth:]) / tenth, "us", pages=len(offsets))
    emit(f"forked_children_per_second_{tag}", n / elapsed, "children/s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--children", default="100,1000,2000",
                    help="children per round, comma-separated")
    ap.add_argument("--pages", type=int, default=700,
                    help="pages each child copies (700: a Python actor's)")
    ap.add_argument("--parent-mib", type=int, default=32,
                    help="the parent's written memory (a fork server's)")
    args = ap.parse_args()
    if args.pages * PAGE > args.parent_mib << 20:
        ap.error("--pages must fit in --parent-mib")
    for n in (int(x) for x in args.children.split(",") if x):
        one_round(n, args.pages, args.parent_mib)


if __name__ == "__main__":
    main()
