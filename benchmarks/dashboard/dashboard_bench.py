#!/usr/bin/env python3
"""benchmarks/dashboard: the dashboard's pages on a big cluster (issue 18).

    .venv/bin/python benchmarks/dashboard/dashboard_bench.py
    .venv/bin/python benchmarks/dashboard/dashboard_bench.py --nodes 10 --actors 100 --tasks 10000

On one machine: a head and --nodes - 1 more raylets (1 CPU, small stores;
loom.cluster_utils.Cluster), --actors Python actors (num_cpus=0, one call
each, on the head's node) and --tasks no-op tasks run to the end (that many
task records at the head). Then, for each page:

  dashboard_server_ms_{page}  the JSON requests that page makes, one after
                              another (as the page's first draw asks them),
                              timed from this process: median of --runs
  dashboard_load_ms_{page}    headless Chromium (Debian's, through
                              Selenium), signed in: from asking for the
                              page until it is drawn (its "Updated" line
                              shows): median of --runs
  dashboard_head_cpu_percent_{closed,open}
                              the head's (loom-gcs) CPU, % of one core, over
                              --idle-s with no task running, --settle-s after
                              the tasks: first before any dashboard request,
                              then with the cluster page open in Chromium
                              (asking every 2 s; the head's history then asks
                              every raylet for its machine every 10 s);
                              dashboard_head_cpu_percent_added: the difference

Targets (issue 18): server <= 300 ms, rendered <= 1 s, the head's CPU with
a dashboard open on an idle cluster < 1% of a core. One JSON line per
result on stdout; the cluster and the browser are always torn down.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import time
import urllib.request

MIB = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")

# What each page asks first (app.js): its JSON paths.
PAGES = {
    "cluster": ["/api/dashboard/cluster?offset=0&limit=50",
                "/api/dashboard/history?since_ms=0"],
    "jobs": ["/api/dashboard/jobs?offset=0&limit=50"],
    "actors": ["/api/dashboard/actors?offset=0&limit=50"],
    "tasks": ["/api/dashboard/tasks/summary",
              "/api/dashboard/tasks?state=FAILED&limit=10",
              "/api/dashboard/tasks?offset=0&limit=50"],
    "objects": ["/api/dashboard/objects?offset=0&limit=20"],
    "placement-groups": ["/api/dashboard/placement_groups"],
    "logs": ["/api/dashboard/logs?offset=0&files=50"],
    "serve": ["/api/dashboard/serve"],
}


def emit(name, value, unit, **extra):
    print(json.dumps(dict(name=name, value=round(value, 2), unit=unit, **extra)),
          flush=True)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def head_cpu_percent(pid, seconds):
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def start(args):
    from loom.cluster_utils import Cluster
    small = {"num_cpus": 1, "num_gpus": 0, "object_store_memory": 64 * MIB}
    cluster = Cluster(head_node_args=dict(small, num_cpus=2))
    try:
        added = 0
        while added < args.nodes - 1:
            wave = min(50, args.nodes - 1 - added)
            for _ in range(wave):
                cluster.add_node(wait=False, **small)
            added += wave
            cluster.wait_for_nodes(timeout=300)
        return cluster
    except BaseException:
        cluster.shutdown()
        raise


def populate(cluster, args):
    import loom
    cluster.connect()

    @loom.remote(num_cpus=0)
    class Idle:
        def ping(self):
            return 1

    @loom.remote
    def noop():
        return 0

    head_node = loom.get_runtime_context().get_node_id()
    from loom.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    here = NodeAffinitySchedulingStrategy(head_node, soft=False)
    t0 = time.monotonic()
    actors = [Idle.options(scheduling_strategy=here).remote()
              for _ in range(args.actors)]
    loom.get([a.ping.remote() for a in actors], timeout=1800)
    print(f"# {args.actors} actors in {time.monotonic() - t0:.1f} s",
          file=sys.stderr)
    t0 = time.monotonic()
    done = 0
    while done < args.tasks:
        batch = min(10000, args.tasks - done)
        loom.get([noop.options(scheduling_strategy=here).remote()
                  for _ in range(batch)], timeout=1800)
        done += batch
    print(f"# {args.tasks} tasks in {time.monotonic() - t0:.1f} s",
          file=sys.stderr)
    return actors


def get(base, token, path):
    req = urllib.request.Request(base + path,
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read()


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--window-size=1280,900"]:
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")),
                            options=options)


def drawn(b):
    from selenium.webdriver.common.by import By
    status = b.find_element(By.ID, "status").text
    return status.startswith("Updated") or status.startswith("Could not")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--actors", type=int, default=1000)
    p.add_argument("--tasks", type=int, default=100000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--idle-s", type=float, default=30)
    p.add_argument("--settle-s", type=float, default=30)
    args = p.parse_args()
    cluster = start(args)
    b = None
    try:
        actors = populate(cluster, args)  # held: dropped, they would die
        session = cluster.head_node.session_dir
        with open(os.path.join(session, "dashboard_address")) as f:
            base = "http://" + f.read().strip()
        with open(os.path.join(session, "auth_token")) as f:
            token = f.read().strip()
        shape = dict(nodes=args.nodes, actors=args.actors, tasks=args.tasks)
        head = cluster.head_node.pids[0]
        time.sleep(args.settle_s)
        closed = head_cpu_percent(head, args.idle_s)
        emit("dashboard_head_cpu_percent_closed", closed, "%", **shape)
        for page, paths in PAGES.items():
            runs = []
            for _ in range(args.runs):
                t0 = time.monotonic()
                for path in paths:
                    get(base, token, path)
                runs.append(1000 * (time.monotonic() - t0))
            emit(f"dashboard_server_ms_{page}", statistics.median(runs), "ms",
                 runs=[round(r) for r in runs], **shape)


        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait
        b = browser()
        b.get(base + "/")
        field = b.find_element(By.NAME, "token")
        field.send_keys(token)
        field.submit()
        WebDriverWait(b, 60).until(drawn)
        for page in PAGES:
            runs = []
            for _ in range(args.runs):
                b.get("about:blank")
                t0 = time.monotonic()
                b.get(f"{base}/#/{page}")
                WebDriverWait(b, 60, poll_frequency=0.01).until(drawn)
                runs.append(1000 * (time.monotonic() - t0))
            emit(f"dashboard_load_ms_{page}", statistics.median(runs), "ms",
                 runs=[round(r) for r in runs], **shape)
        b.get(f"{base}/#/cluster")
        WebDriverWait(b, 60).until(drawn)
        opened = head_cpu_percent(head, args.idle_s)
        emit("dashboard_head_cpu_percent_open", opened, "%", **shape)
        emit("dashboard_head_cpu_percent_added", opened - closed, "%", **shape)
    finally:
        if b is not None:
            b.quit()
        cluster.shutdown()


if __name__ == "__main__":
    main()
