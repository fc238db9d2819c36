# tests/python/test_driver_memory.py
#
# A driver gives memory back: after 100,000 refs are made and dropped, its
# resident size returns near where it started (it kept ~57 MiB: the object
# table's empty slots and the allocator's free pages).

import gc
import time

import loom


def _rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_dropped_refs_give_their_memory_back(new_cluster):
    new_cluster(num_cpus=1)
    warm = [loom.put(i) for i in range(1000)]
    del warm
    gc.collect()
    base = _rss_mib()
    refs = [loom.put(i) for i in range(100_000)]
    grown = _rss_mib()
    del refs
    gc.collect()
    time.sleep(1)  # frees reach the table on the driver's loop
    after = _rss_mib()
    print(f"driver RSS {base:.1f} MiB, {grown:.1f} with 100,000 refs, "
          f"{after:.1f} after dropping them")
    assert grown - base > 30, "the refs should have cost memory"
    assert after - base < 10
