# tests/python/test_prometheus.py
#
# Debian's real `prometheus` (scripts/install-deps.sh installs it and stops
# its packaged service) started on a free port with a temporary config that
# reads the head's discovery file, scraping a running cluster: every
# endpoint is up, and a task-latency p95 comes out of its HTTP API.

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

import loom
from loom.cluster_utils import Cluster

from conftest import wait_until


@loom.remote(num_cpus=0)
def step(seconds):
    time.sleep(seconds)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(port, promql):
    url = (f"http://127.0.0.1:{port}/api/v1/query?" +
           urllib.parse.urlencode({"query": promql}))
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.fixture
def prometheus(tmp_path):
    """Starts prometheus against a fresh cluster's discovery file; yields
    its port; stops both."""
    binary = shutil.which("prometheus")
    if not binary:
        pytest.fail("prometheus not found: scripts/install-deps.sh installs it")
    if loom.is_initialized():
        loom.shutdown()
    cluster = Cluster(head_node_args={"num_cpus": 2})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes(timeout=30)
    cluster.connect()
    sd_file = os.path.join(cluster.head_node.session_dir, "prometheus_sd.json")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: loom\n"
        "    file_sd_configs:\n"
        f"      - files: ['{sd_file}']\n"
        "        refresh_interval: 1s\n")
    port = free_port()
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}",
         f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        def ready():
            if proc.poll() is not None:
                pytest.fail("prometheus exited:\n" +
                            (tmp_path / "prometheus.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/-/ready", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        wait_until(ready, timeout=60, interval=0.2, what="prometheus ready")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        loom.shutdown()
        cluster.shutdown()


@pytest.mark.loom_timeout(180)
def test_prometheus_scrapes_every_endpoint_and_reads_a_task_p95(prometheus):
    # 19 short steps and one long one: p95 lies among the short ones.
    loom.get([step.remote(0.02) for _ in range(19)] + [step.remote(0.6)])

    def all_up():
        up = query(prometheus, "up")
        jobs = {r["metric"].get("loom_component") for r in up
                if r["value"][1] == "1"}
        return len(up) == 3 and jobs == {"head", "raylet"} and up

    wait_until(all_up, timeout=60, interval=0.5,
               what="the head and both raylets up in prometheus")
    promql = ('histogram_quantile(0.95, sum by (le) '
              '(loom_task_run_seconds_bucket{name="step"}))')

    def p95():
        result = query(prometheus, promql)
        if not result or result[0]["value"][1] in ("NaN", ""):
            return None
        count = query(prometheus,
                      'loom_task_run_seconds_count{name="step"}')
        if not count or count[0]["value"][1] != "20":
            return None
        return float(result[0]["value"][1])

    value = wait_until(p95, timeout=60, interval=0.5,
                       what="a p95 for step from prometheus")
    # The 19th of 20 ran ~20 ms (a loaded machine may stretch it a little);
    # the long one, in (0.5, 1], must not be what p95 reads.
    assert 0.01 < value <= 0.1, value
