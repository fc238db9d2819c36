#!/usr/bin/env python3
"""Loom across three network hosts (network + mount namespaces on this
machine, tests/multihost/hosts.py), beside the floors measured in the same
run. One JSON line per result on stdout, as loom-bench prints them:

    transfer_gigabytes_cross_host  GB/s   a 1 GiB object made on host 2, got
                                          by a driver on host 3 (median of 3)
    tcp_stream_gigabytes_floor     GB/s   1 GiB over one plain TCP stream
                                          from host 2 to host 3 (median of 3)
    multi_host_tasks_async         tasks/s  batches of 1,000 SPREAD no-op
                                          tasks from a driver on host 3 over
                                          3 hosts; "shares": each host's part
    single_client_tasks_async      tasks/s  the same driver, batches of 1,000
                                          no-op tasks, default scheduling

Needs root and iproute2; run from the repository root with the venv's
python after `make install-python`:

    sudo .venv/bin/python benchmarks/multihost.py [--tls] [--transfer-only]

--tls: the cluster with `loom start --tls-dir` (mutual TLS on every link);
--transfer-only: the floor and the transfer, not the task rates
(benchmarks/tls_cross_host_ab.sh alternates plain and TLS runs).
"""
import argparse
import json
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" /
                       "multihost"))
import hosts  # noqa: E402

GIB = 1 << 30
RUNS = 3

TCP_RECEIVER = """
    import socket, sys, time
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], 0))
    s.listen(1)
    print(s.getsockname()[1], flush=True)
    conn, _ = s.accept()
    buf = bytearray(4 << 20)
    view = memoryview(buf)
    total, start = 0, None
    while True:
        n = conn.recv_into(view)
        if n == 0:
            break
        if start is None:
            start = time.perf_counter()
        total += n
    print(total, time.perf_counter() - start, flush=True)
"""

TCP_SENDER = """
    import socket, sys
    chunk = b"x" * (4 << 20)
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
    for _ in range(int(sys.argv[3]) // len(chunk)):
        s.sendall(chunk)
    s.close()
"""


def tcp_stream_gbps(src, dst):
    """1 GiB over one TCP connection from src to dst: GB/s at the receiver
    (first byte to end of stream)."""
    recv = dst.popen([sys.executable, "-c", textwrap.dedent(TCP_RECEIVER),
                      dst.ip])
    port = recv.stdout.readline().strip()
    send = src.run([sys.executable, "-c", textwrap.dedent(TCP_SENDER),
                    dst.ip, port, GIB], timeout=120)
    out, err = recv.communicate(timeout=120)
    if send.returncode != 0 or recv.returncode != 0:
        raise RuntimeError(f"tcp stream failed: {send.stderr}{err}")
    total, seconds = out.split()
    if int(total) != GIB:
        raise RuntimeError(f"tcp stream received {total} bytes, not {GIB}")
    return GIB / float(seconds) / 1e9


DRIVER = """
    import json, statistics, sys, time
    import numpy as np
    import loom

    loom.init(address="{address}")
    ip_of = {{n["NodeID"]: n["NodeManagerAddress"] for n in loom.nodes()}}

    def emit(**record):
        print(json.dumps(record), flush=True)

    @loom.remote(resources={{"host2": 1}})
    def make(fill):
        return np.full({size}, fill, dtype=np.uint8)

    @loom.remote(resources={{"host2": 1}})
    def size_of(a):
        return a.nbytes

    runs = []
    for i in range({runs}):
        ref = make.remote(i + 1)
        assert loom.get(size_of.remote(ref), timeout=120) == {size}
        start = time.perf_counter()
        a = loom.get(ref, timeout=120)
        runs.append(time.perf_counter() - start)
        assert a.nbytes == {size} and a[0] == a[-1] == a[{size} // 2] == i + 1
        del a, ref
    emit(name="transfer_gigabytes_cross_host",
         value=round({size} / statistics.median(runs) / 1e9, 3), unit="GB/s",
         runs_s=[round(r, 3) for r in runs], tls={tls})
    if {transfer_only}:
        sys.exit(0)

    # One function for the rate and the shares, so that the shares are
    # those of the leases the rate was measured on (another function would
    # be another scheduling key, with leases of its own).
    @loom.remote
    def noop(where=False):
        return loom.get_runtime_context().get_node_id() if where else None

    def tasks_per_s(options):
        loom.get([noop.options(**options).remote() for _ in range(1000)])
        rates = []
        for _ in range(5):
            done, start = 0, time.perf_counter()
            while time.perf_counter() - start < 1.0:
                loom.get([noop.options(**options).remote()
                          for _ in range(1000)])
                done += 1000
            rates.append(done / (time.perf_counter() - start))
        shares = {{}}
        for n in loom.get([noop.options(**options).remote(True)
                           for _ in range(3000)]):
            shares[ip_of[n]] = shares.get(ip_of[n], 0) + 1
        return statistics.median(rates), {{ip: round(c / 3000, 3)
                                           for ip, c in sorted(shares.items())}}

    rate, shares = tasks_per_s({{"scheduling_strategy": "SPREAD"}})
    emit(name="multi_host_tasks_async", value=round(rate, 1), unit="tasks/s",
         shares=shares)
    rate, shares = tasks_per_s({{}})
    emit(name="single_client_tasks_async", value=round(rate, 1),
         unit="tasks/s", shares=shares)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--transfer-only", action="store_true")
    args = parser.parse_args()
    try:
        hosts.check_available()
    except hosts.Unavailable as e:
        sys.exit(f"multihost benchmark: {e}")
    with hosts.Network(3) as net:
        _, h2, h3 = net.hosts
        cluster = hosts.LoomCluster(net, num_cpus=2,
                                    object_store_memory=3 * GIB // 2,
                                    tls=args.tls).start()
        try:
            floor = sorted(tcp_stream_gbps(h2, h3) for _ in range(RUNS))
            print(json.dumps({"name": "tcp_stream_gigabytes_floor",
                              "value": round(floor[RUNS // 2], 3),
                              "unit": "GB/s", "runs": [round(f, 3)
                                                       for f in floor]}),
                  flush=True)
            proc = cluster.start_driver(
                h3, DRIVER.format(address=cluster.address, size=GIB,
                                  runs=RUNS, tls=args.tls,
                                  transfer_only=args.transfer_only))
            records = {}
            for line in proc.stdout:
                record = json.loads(line)
                records[record["name"]] = record
                # Each figure beside its floor from this run.
                if record["name"] == "transfer_gigabytes_cross_host":
                    record["vs_tcp_stream_floor"] = round(
                        record["value"] / floor[RUNS // 2], 2)
                if record["name"] == "single_client_tasks_async":
                    multi = records["multi_host_tasks_async"]
                    multi["vs_single_client_tasks_async"] = round(
                        multi["value"] / record["value"], 2)
                    print(json.dumps(multi), flush=True)
                if record["name"] != "multi_host_tasks_async":
                    print(json.dumps(record), flush=True)
            err = proc.stderr.read()
            if proc.wait() != 0:
                sys.exit(f"multihost benchmark driver failed:\n{err}")
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
