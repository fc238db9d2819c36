"""A Python driver for a running cluster (make demo starts one):

    python examples/python_demo.py            # joins the cluster ("auto")

Tasks fan out, a numpy array travels through shared memory without a copy,
an actor keeps state, an async actor serves calls concurrently, and a
remote exception comes back as its own type.
"""
import asyncio
import time

import numpy as np

import loom


@loom.remote
def square(x):
    return x * x


@loom.remote
def column_means(matrix):
    # `matrix` is read in place from the object store (read-only).
    return matrix.mean(axis=0)


@loom.remote
class RunningMean:
    def __init__(self):
        self.n, self.total = 0, 0.0

    def add(self, x):
        self.n += 1
        self.total += x
        return self.total / self.n


@loom.remote
class Batcher:
    async def handle(self, i):
        await asyncio.sleep(0.5)  # e.g. waiting for a batch of requests
        return i


@loom.remote
def fails():
    raise ValueError("bad input")


def main():
    loom.init(address="auto")
    print("squares:", loom.get([square.remote(i) for i in range(10)]))

    matrix = np.random.default_rng(0).random((2000, 500))  # 8 MB
    ref = loom.put(matrix)
    means = loom.get(column_means.remote(ref))
    print(f"column means of a {matrix.nbytes >> 20} MiB matrix, "
          f"computed remotely: {means[:3].round(3)} ...")
    view = loom.get(ref)
    start, size = loom._private.store_mapping()
    inside = start <= view.__array_interface__["data"][0] < start + size
    print(f"get returned a read-only view into shared memory: {inside}")

    mean = RunningMean.remote()
    print("running mean:", loom.get([mean.add.remote(x) for x in (4, 8, 3)]))

    batcher = Batcher.remote()
    t = time.monotonic()
    loom.get([batcher.handle.remote(i) for i in range(20)])
    print(f"20 async calls of 0.5 s each took {time.monotonic() - t:.1f} s")

    try:
        loom.get(fails.remote())
    except ValueError as e:
        print("remote ValueError caught:", str(e).splitlines()[-1])
    print("cluster resources:", loom.cluster_resources())
    loom.shutdown()


if __name__ == "__main__":
    main()
