# tests/python/test_metrics.py
#
# Prometheus metrics (docs/observability.md) from a real two-node cluster:
# the head's discovery file lists every endpoint; the head exports tasks by
# state with per-function latency histograms, actors and placement groups
# under Ray's names; each raylet exports its resources, object store memory
# and the machine; user metrics (loom.util.metrics) recorded in a task reach
# the /metrics of that task's node; bad metrics raise clear errors.

import json
import os
import time

import pytest

import loom
from loom.util.metrics import Counter, Gauge, Histogram
from loom.util.placement_group import placement_group

from conftest import sample, scrape, two_node_cluster, wait_until


@loom.remote(num_cpus=0)
def nap(seconds):
    time.sleep(seconds)
    return loom.get_runtime_context().get_node_id()


@loom.remote(num_cpus=0)
def serve_requests(n):
    requests = Counter("test_requests_total", description="Requests served",
                       tag_keys=("route",))
    depth = Gauge("test_queue_depth", description="Requests waiting")
    latency = Histogram("test_latency_seconds", description="Latency",
                        boundaries=[0.01, 0.1, 1], tag_keys=("route",))
    latency.set_default_tags({"route": "/predict"})
    for i in range(n):
        requests.inc(tags={"route": "/predict"})
        latency.observe(0.05)
    depth.set(7)
    return loom.get_runtime_context().get_node_id()


@loom.remote(num_cpus=0)
class Model:
    def ready(self):
        return True


@pytest.fixture(scope="module")
def cluster():
    c, other = two_node_cluster(head_cpus=2)
    c.connect()
    yield {"cluster": c, "other": other}
    loom.shutdown()
    c.shutdown()


def discovery(cluster):
    path = os.path.join(cluster["cluster"].head_node.session_dir,
                        "prometheus_sd.json")
    with open(path) as f:
        return json.load(f)


def targets(cluster, component):
    return [t for g in discovery(cluster) for t in g["targets"]
            if g["labels"]["loom_component"] == component]


def test_the_discovery_file_lists_the_head_and_every_raylet(cluster):
    groups = wait_until(lambda: len(discovery(cluster)) == 3 and
                        discovery(cluster), what="3 endpoints listed")
    components = sorted(g["labels"]["loom_component"] for g in groups)
    assert components == ["head", "raylet", "raylet"]
    node_ids = {g["labels"].get("node_id") for g in groups} - {None}
    assert cluster["other"].node_id in node_ids
    for g in groups:
        assert "loom_" in scrape(g["targets"][0])


def test_the_head_exports_tasks_actors_and_groups_under_rays_names(cluster):
    loom.get([nap.remote(0.05) for _ in range(10)])
    model = Model.remote()
    assert loom.get(model.ready.remote())
    pg = placement_group([{"CPU": 0.5}])
    assert pg.wait(30)
    head = targets(cluster, "head")[0]

    def exported():
        text = scrape(head)
        if sample(text, "loom_tasks", name="nap", state="FINISHED") != 10:
            return None
        if sample(text, "loom_actors", name="Model", state="ALIVE") != 1:
            return None
        if sample(text, "loom_placement_groups", state="CREATED") != 1:
            return None
        # The owner's report (finished) and the executor's (run times)
        # come separately, each within a second.
        if sample(text, "loom_task_run_seconds_count", name="nap") != 10:
            return None
        return text

    text = wait_until(exported, timeout=30, interval=0.5,
                      what="tasks, actors and groups on the head's /metrics")
    # Run-time histogram: every nap ran 50 ms or a little more.
    assert sample(text, "loom_task_run_seconds_bucket", name="nap",
                  le="0.025") == 0
    assert sample(text, "loom_task_run_seconds_bucket", name="nap",
                  le="0.1") == 10
    assert 0.5 <= sample(text, "loom_task_run_seconds_sum", name="nap") < 1.0
    assert sample(text, "loom_task_queued_seconds_count", name="nap") == 10


def test_each_raylet_exports_resources_store_memory_and_the_machine(cluster):
    for target in targets(cluster, "raylet"):
        text = wait_until(
            lambda: (lambda t: t if sample(t, "loom_resources", name="CPU",
                                           state="AVAILABLE") is not None
                     else None)(scrape(target)),
            timeout=10, interval=0.2, what="loom_resources")
        total = (sample(text, "loom_resources", name="CPU", state="AVAILABLE") +
                 sample(text, "loom_resources", name="CPU", state="USED"))
        assert total in (1.0, 2.0), text
        assert sample(text, "loom_object_store_memory",
                      location="MMAP_SHM") is not None
        assert sample(text, "loom_object_store_memory",
                      location="SPILLED") is not None
        assert sample(text, "loom_node_mem_total") > 0
        assert 0 <= sample(text, "loom_node_cpu_utilization") <= 100
        assert sample(text, "loom_node_disk_usage") > 0
        assert sample(text, "loom_node_network_received") is not None
    other = [t for g in discovery(cluster) for t in g["targets"]
             if g["labels"].get("node_id") == cluster["other"].node_id][0]
    assert sample(scrape(other), "loom_resources", name="other",
                  state="AVAILABLE") == 1


def test_user_metrics_reach_the_raylet_of_the_node_they_ran_on(cluster):
    node = loom.get(serve_requests.options(resources={"other": 0.1})
                    .remote(3))
    assert node == cluster["other"].node_id
    # Another worker on the same node adds to the same counter.
    loom.get(serve_requests.options(resources={"other": 0.1}).remote(2))
    other = [t for g in discovery(cluster) for t in g["targets"]
             if g["labels"].get("node_id") == node][0]

    def exported():
        text = scrape(other)
        n = sample(text, "test_requests_total", route="/predict")
        return text if n == 5 else None

    text = wait_until(exported, timeout=20, interval=0.3,
                      what="the user counter at 5 on the task's node")
    assert sample(text, "test_queue_depth") == 7
    assert sample(text, "test_latency_seconds_bucket", route="/predict",
                  le="0.01") == 0
    assert sample(text, "test_latency_seconds_bucket", route="/predict",
                  le="0.1") == 5
    assert sample(text, "test_latency_seconds_count", route="/predict") == 5
    assert "# TYPE test_requests_total counter" in text
    # The driver's own metrics go to its node's raylet (the head node).
    Gauge("test_driver_gauge").set(42)
    head_raylet = [t for g in discovery(cluster) for t in g["targets"]
                   if g["labels"]["loom_component"] == "raylet" and
                   g["labels"].get("node_id") != node][0]
    wait_until(lambda: sample(scrape(head_raylet), "test_driver_gauge") == 42,
               timeout=20, interval=0.3, what="the driver's gauge")


def test_bad_metrics_raise_clear_errors():
    with pytest.raises(ValueError, match="must match"):
        Counter("bad name")
    with pytest.raises(ValueError, match="Loom's own"):
        Gauge("loom_tasks")
    with pytest.raises(ValueError, match="needs boundaries"):
        Histogram("h_without_bounds")
    with pytest.raises(ValueError, match="strictly increasing"):
        Histogram("h_bad_bounds", boundaries=[1, 0.5])
    c = Counter("test_errors_total", tag_keys=("kind",))
    with pytest.raises(ValueError, match="positive"):
        c.inc(-1, tags={"kind": "x"})
    with pytest.raises(ValueError, match="no value for tag keys"):
        c.inc()
    with pytest.raises(ValueError, match="has no label 'other'"):
        c.inc(tags={"kind": "x", "other": "y"})
    with pytest.raises(ValueError, match="already defined"):
        Gauge("test_errors_total", tag_keys=("kind",))
    with pytest.raises(ValueError, match="no tag key"):
        c.set_default_tags({"nope": 1})
    c.inc(tags={"kind": "x"})  # still usable
