# tests/python/test_state.py
#
# The state API (docs/observability.md) against a real two-node cluster:
# task records from task events (states, retries, errors, both nodes),
# `loom list|get|summary` with filters and formats, the same from
# loom.util.state, clear errors for bad filters and unknown ids, and the
# head's bound on records, which says what it dropped.

import json
import os
import subprocess

import pytest

import loom
from loom.util import state

from conftest import loom_cli, two_node_cluster, wait_until


@loom.remote(num_cpus=0)
def where(i):
    return loom.get_runtime_context().get_node_id()


@loom.remote(num_cpus=0)
def boom():
    raise ValueError("boom in a task")


@loom.remote(num_cpus=0, max_retries=2)
def crash_once(marker):
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return "second time"


@loom.remote(num_cpus=0)
class Greeter:
    def hello(self):
        return "hi"


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    cluster, other = two_node_cluster(head_cpus=1)
    cluster.connect()
    marker = str(tmp_path_factory.mktemp("state") / "crashed")
    here = loom.get([where.remote(i) for i in range(4)])
    there = loom.get([where.options(resources={"other": 0.1}).remote(i)
                      for i in range(3)])
    with pytest.raises(loom.exceptions.TaskError):
        loom.get(boom.remote())
    assert loom.get(crash_once.remote(marker), timeout=60) == "second time"
    greeter = Greeter.remote()
    assert loom.get(greeter.hello.remote()) == "hi"
    yield {"cluster": cluster, "head_node": cluster.head_node.node_id,
           "other_node": other.node_id, "here": here, "there": there,
           "greeter": greeter}
    loom.shutdown()
    cluster.shutdown()


def cli(cluster, *args, check=True):
    r = subprocess.run([loom_cli(), *args, "--address", cluster.address,
                        "--session-root", cluster.session_root],
                       capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def tasks_named(name):
    return state.list_tasks(filters=[("name", "=", name)], limit=1000)


def settled(rows):
    """The rows once owner and executor both reported (ended, and ran
    somewhere), else []."""
    done = all(t.state in ("FINISHED", "FAILED") and t.node_id and
               state.get_task(t.task_id).submitted_at for t in rows)
    return rows if done else []


def test_tasks_on_both_nodes_are_listed_with_their_states(two_nodes):
    assert set(two_nodes["there"]) == {two_nodes["other_node"]}
    rows = wait_until(lambda: len(tasks_named("where")) == 7 and
                      settled(tasks_named("where")), 20,
                      what="7 finished tasks")
    assert all(t.state == "FINISHED" for t in rows)
    assert {t.node_id for t in rows} == {two_nodes["head_node"],
                                         two_nodes["other_node"]}
    on_other = state.list_tasks(filters=[
        ("name", "=", "where"), ("node_id", "=", two_nodes["other_node"][:8])])
    assert len(on_other) == 3
    not_other = state.list_tasks(filters=[
        "name=where", f"node_id!={two_nodes['other_node']}"])
    assert len(not_other) == 4
    assert all(t.type == "NORMAL_TASK" and t.pid > 0 for t in rows)


def test_a_failed_task_keeps_its_error_and_a_retried_one_its_attempt(
        two_nodes):
    failed = wait_until(lambda: state.list_tasks(
        filters=[("state", "=", "FAILED")], detail=True), 20,
        what="the failed task")
    assert len(failed) == 1
    assert failed[0].name == "boom"
    assert failed[0].error_type == "TASK_ERROR"
    assert "boom in a task" in failed[0].error_message
    retried = wait_until(lambda: settled(tasks_named("crash_once")), 20)
    assert retried[0].state == "FINISHED"
    assert retried[0].attempt == 1 and retried[0].attempt_number == 1
    full = state.get_task(retried[0].task_id)
    assert full.run_ms is not None and full.total_ms >= full.run_ms


def test_actor_tasks_are_named_after_their_class(two_nodes):
    rows = wait_until(lambda: settled([t for t in state.list_tasks(limit=1000)
                                       if t.name.startswith("Greeter.")]), 20)
    names = {t.name: t.type for t in rows}
    assert names == {"Greeter.__init__": "ACTOR_CREATION_TASK",
                     "Greeter.hello": "ACTOR_TASK"}


def test_loom_list_tasks_filters_limits_and_formats(two_nodes):
    cluster = two_nodes["cluster"]
    wait_until(lambda: settled(tasks_named("where")), 20)
    table = cli(cluster, "list", "tasks", "--filter", "name=where")
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["TASK_ID", "ATTEMPT", "NAME", "STATE"]
    assert len(lines) == 8 and all("FINISHED" in line for line in lines[1:])
    limited = cli(cluster, "list", "tasks", "--limit", "2", "--format", "json")
    rows = json.loads(limited.stdout)
    assert len(rows) == 2
    assert "2 of" in limited.stderr and "--limit for more" in limited.stderr
    detail = json.loads(cli(cluster, "list", "tasks", "-f", "state=failed",
                            "--detail", "--format", "json").stdout)
    assert detail[0]["error_type"] == "TASK_ERROR"
    assert isinstance(detail[0]["run_ms"], float)
    yaml = cli(cluster, "list", "tasks", "-f", "name=boom", "--format",
               "yaml").stdout
    assert yaml.startswith("- task_id: ") and 'name: "boom"' in yaml


def test_loom_get_and_summary(two_nodes):
    cluster = two_nodes["cluster"]
    task = wait_until(lambda: tasks_named("boom"), 20)[0]
    got = cli(cluster, "get", "tasks", task.task_id[:12]).stdout
    assert 'name: "boom"' in got and "error_message:" in got
    summary = cli(cluster, "summary", "tasks", "--format", "json").stdout
    by_name = {row["name"]: row for row in json.loads(summary)}
    assert by_name["where"]["FINISHED"] == 7
    assert by_name["where"]["run_p95_ms"] >= by_name["where"]["run_p50_ms"] > 0
    assert by_name["boom"]["FAILED"] == 1
    python = state.summarize_tasks()["cluster"]
    assert python["summary"]["where"]["state_counts"] == {"FINISHED": 7}
    assert python["total_tasks"] >= 11
    actors = cli(cluster, "summary", "actors").stdout
    assert "Greeter" in actors
    objects = cli(cluster, "summary", "objects", "--format", "json").stdout
    assert len(json.loads(objects)) == 2


def test_other_kinds_list_with_filters(two_nodes):
    cluster = two_nodes["cluster"]
    nodes = json.loads(cli(cluster, "list", "nodes", "--format", "json")
                       .stdout)
    assert {n["node_id"] for n in nodes} == {two_nodes["head_node"],
                                             two_nodes["other_node"]}
    assert all(n["state"] == "ALIVE" for n in nodes)
    actors = state.list_actors(filters=[("state", "=", "ALIVE")])
    assert len(actors) == 1 and actors[0].class_name.endswith("Greeter")
    assert state.get_actor(actors[0].actor_id[:10]).pid > 0
    jobs = state.list_jobs(filters=["state=RUNNING"])
    assert len(jobs) == 1
    workers = state.list_workers(filters=[("node_id", "=",
                                           two_nodes["other_node"])])
    assert workers and all(w.node_id == two_nodes["other_node"]
                           for w in workers)
    pgs = cli(cluster, "list", "placement-groups").stdout
    assert pgs.splitlines()[0].startswith("PLACEMENT_GROUP_ID")
    objs = cli(cluster, "list", "objects")
    assert "the 10 largest" in objs.stderr


def test_bad_filters_and_unknown_ids_are_clear_errors(two_nodes):
    cluster = two_nodes["cluster"]
    r = cli(cluster, "list", "tasks", "--filter", "colour=red", check=False)
    assert r.returncode == 1
    assert "unknown filter key 'colour' for tasks; one of: task_id" in r.stderr
    r = cli(cluster, "list", "actors", "--filter", "nokey", check=False)
    assert r.returncode == 1 and "expected key=value" in r.stderr
    r = cli(cluster, "list", "tasks", "-f", "state=SLEEPING", check=False)
    assert r.returncode == 1 and "unknown task state 'SLEEPING'" in r.stderr
    r = cli(cluster, "get", "actors", "ffffffffffff", check=False)
    assert r.returncode == 1 and "no actor with id ffffffffffff" in r.stderr
    assert state.get_task("ffffffffffffffff") is None
    with pytest.raises(ValueError, match="filter op"):
        state.list_tasks(filters=[("state", "~", "x")])
    with pytest.raises(Exception, match="unknown filter key"):
        state.list_nodes(filters=["colour=red"])
    # The head still serves.
    assert len(cli(cluster, "list", "nodes").stdout.splitlines()) == 3


def test_timeline_has_a_row_per_worker_and_a_slice_per_task(two_nodes,
                                                            tmp_path):
    wait_until(lambda: settled(tasks_named("where")), 20)
    events = loom.timeline()
    runs = [e for e in events if e.get("cat") == "task" and
            e["name"] == "where"]
    assert len(runs) == 7 and all(e["ph"] == "X" and e["dur"] >= 0
                                  for e in runs)
    phases = {e["name"] for e in events if e.get("cat") == "phase"}
    assert {"fetch arguments", "run where", "store result"} <= phases
    nodes = {e["args"]["name"] for e in events
             if e["name"] == "process_name"}
    assert len(nodes) == 2
    pending = [e for e in events if e.get("cat") == "pending"]
    assert pending and {e["ph"] for e in pending} == {"b", "e"}
    out = tmp_path / "trace.json"
    r = cli(two_nodes["cluster"], "timeline", "-o", str(out), "--job-id",
            runs[0]["args"]["job_id"])
    assert "open it in https://ui.perfetto.dev" in r.stdout
    with open(out) as f:
        trace = json.load(f)
    assert len([e for e in trace["traceEvents"] if e.get("cat") == "task"
                and e["name"] == "where"]) == 7
    r = cli(two_nodes["cluster"], "timeline", "-o", str(out), "--job-id",
            "zz", check=False)
    assert r.returncode == 1 and "job id must be 8 hex digits" in r.stderr

@loom.remote(num_cpus=0)
def make_array():
    import numpy as np
    return np.ones(1 << 20)  # 8 MiB: stays in the store of the node that ran it


def test_timeline_shows_objects_pulled_between_nodes(two_nodes):
    there = make_array.options(resources={"other": 0.1}).remote()
    # The driver's node pulls it from the other node's store.
    assert float(loom.get(there).sum()) == float(1 << 20)

    def pulls():
        return [e for e in loom.timeline() if e.get("cat") == "transfer" and
                e.get("ph") == "X" and e["name"].startswith("pull ") and
                e["args"]["bytes"] >= 8 << 20]

    pull = wait_until(pulls, 20, interval=0.5, what="a pull in the timeline")[0]
    assert pull["args"]["from_node"] == two_nodes["other_node"]
    assert pull["args"]["to_node"] == two_nodes["head_node"]
    assert not pull["args"]["failed"] and pull["dur"] >= 0
    events = loom.timeline()
    assert any(e["name"] == "thread_name" and
               e["args"]["name"] == "object transfers" for e in events)
    assert {"s", "f"} <= {e["ph"] for e in events
                          if e.get("cat") == "transfer"}


@loom.remote(num_cpus=0)
def shout(word):
    print(f"shouting {word}", flush=True)
    return os.getpid()


def test_logs_of_a_task_and_of_a_worker(two_nodes):
    pid = loom.get(shout.remote("tangerine"))
    task = wait_until(lambda: settled(tasks_named("shout")), 20)[0]
    assert task.pid == pid
    text = wait_until(lambda: "".join(state.get_log(task_id=task.task_id,
                                                    tail=-1)), 20)
    assert "shouting tangerine" in text
    worker = state.get_task(task.task_id).worker_id
    r = cli(two_nodes["cluster"], "logs", "--worker-id", worker[:12],
            "--tail", "5")
    assert "shouting tangerine" in r.stdout
    r = cli(two_nodes["cluster"], "logs", "--task-id", "ffffffffffff",
            check=False)
    assert r.returncode == 1 and "no task with id ffffffffffff" in r.stderr



@loom.remote(num_cpus=0)
def tiny(i):
    return i


def test_the_head_bounds_records_per_job_and_says_so(new_cluster,
                                                     monkeypatch):
    monkeypatch.setenv("LOOM_TASK_EVENTS_MAX_PER_JOB", "20")
    new_cluster(num_cpus=2)
    assert loom.get([tiny.remote(i) for i in range(60)]) == list(range(60))
    wait_until(lambda: state.summarize_tasks()["cluster"]["summary"]
               .get("tiny", {}).get("state_counts") == {"FINISHED": 60},
               20, what="60 counted")
    with pytest.warns(UserWarning, match="dropped the records of 40 tasks"):
        rows = state.list_tasks(limit=100)
    assert len(rows) == 20


@loom.remote(num_cpus=0)
class SlowInit:
    def __init__(self):
        import time
        time.sleep(5)


@loom.remote(num_cpus=0)
class KilledAfterInit:
    def hello(self):
        return "hi"


def test_a_killed_actors_creation_task_ends(two_nodes):
    # Last in this file: it adds a failed task, which the tests above do not
    # expect among the module cluster's records.
    # Killed with its process, an actor's worker never sends its last task
    # events: the head ends the creation task's record itself. (Killed
    # before or during its __init__, the record ends FAILED either way.)
    slow = SlowInit.remote()
    loom.kill(slow)
    quick = KilledAfterInit.remote()
    assert loom.get(quick.hello.remote()) == "hi"
    loom.kill(quick)
    failed = wait_until(lambda: [t for t in tasks_named("SlowInit.__init__")
                                 if t.state == "FAILED"], 20,
                        what="the killed __init__ failed")
    assert failed[0].error_type == "ACTOR_DIED"
    wait_until(lambda: [t for t in tasks_named("KilledAfterInit.__init__")
                        if t.state == "FINISHED"], 20,
               what="the finished __init__")
