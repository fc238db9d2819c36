"""Allreduce bandwidth of loom.collective (backend "cpu"): `world` actors
allreduce a float32 array of `--mib` MiB, repeatedly; prints one JSON line
per size, {"name": "allreduce_cpu_<N>MiB_gigabytes", "value": GB/s, ...},
where GB/s is the array's bytes over the time of one allreduce (what each
rank gets reduced per second).

    python benchmarks/python/collective_perf.py [--world 4] [--mib 1 16 64]
"""
import argparse
import json
import time

import numpy as np

import loom
import loom.collective as col


@loom.remote(num_cpus=0)
class Rank:
    def __init__(self, world, rank):
        col.init_collective_group(world, rank, backend="cpu",
                                  group_name="bench")

    def run(self, mib, rounds):
        x = np.ones(mib * (1 << 20) // 4, dtype=np.float32)
        col.allreduce(x, group_name="bench")  # warm-up
        col.barrier(group_name="bench")
        start = time.perf_counter()
        for _ in range(rounds):
            col.allreduce(x, group_name="bench")
        return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=int, default=4)
    ap.add_argument("--mib", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    loom.init()
    ranks = [Rank.remote(args.world, r) for r in range(args.world)]
    for mib in args.mib:
        took = max(loom.get([r.run.remote(mib, args.rounds) for r in ranks]))
        gbs = mib * (1 << 20) * args.rounds / took / 1e9
        print(json.dumps({"name": f"allreduce_cpu_{mib}MiB_gigabytes",
                          "value": round(gbs, 3), "unit": "GB/s",
                          "world": args.world}), flush=True)
    loom.shutdown()


if __name__ == "__main__":
    main()
