# tests/python/test_api.py
#
# The core API: init and its options, put/get/wait, nested tasks, many tasks,
# num_returns, cancel, cluster and runtime information, GPU ids.

import ctypes
import os
import subprocess
import time
from pathlib import Path

import pytest

import loom
from loom._private import worker as _worker
from loom.exceptions import GetTimeoutError, TaskCancelledError
from conftest import REPO_ROOT, has_gpu, touch, wait_for_file, wait_until


@loom.remote
def square(x):
    return x * x


@loom.remote
def add(a, b):
    return a + b


@loom.remote
def identity(x):
    return x


@loom.remote
def wait_for_gate(gate, started=None):
    if started:
        touch(started)
    return wait_for_file(gate)


# --- init -------------------------------------------------------------------


def test_init_starts_a_private_cluster_and_shutdown_stops_it(new_cluster):
    assert not loom.is_initialized()
    new_cluster(num_cpus=2)
    assert loom.is_initialized()
    assert loom.get(square.remote(4)) == 16
    loom.shutdown()
    assert not loom.is_initialized()
    # A second cluster can start in the same process.
    new_cluster(num_cpus=1)
    assert loom.cluster_resources()["CPU"] == 1.0
    assert loom.get(square.remote(5)) == 25


def test_init_resources_are_offered_and_scheduled(new_cluster, tmp_path):
    new_cluster(num_cpus=4, resources={"accel": 2})
    total = loom.cluster_resources()
    assert total["CPU"] == 4.0
    assert total["accel"] == 2.0

    # Four tasks that each need one "accel": at most two run at once.
    @loom.remote(resources={"accel": 1})
    def interval():
        start = time.time()
        time.sleep(1.0)
        return start, time.time()

    spans = loom.get([interval.remote() for _ in range(4)], timeout=60)
    for start, _ in spans:
        running = sum(1 for s, e in spans if s <= start < e)
        assert running <= 2, spans


def stopping_driver(shut_down):
    return f"""
        import os, time
        import loom

        loom.init(num_cpus=2)

        @loom.remote
        def pid():
            return os.getpid()

        print("WORKER", loom.get(pid.remote()), flush=True)
        if {shut_down}:
            loom.shutdown()
            print("SHUT DOWN", flush=True)
            time.sleep(120)  # alive while the test looks; the test kills it
    """


@pytest.mark.loom_timeout(240)
def test_shutdown_and_exit_stop_the_private_cluster(processes):
    # Exit without shutdown: everything the driver started goes with it.
    code, out, err = processes.run_driver(stopping_driver(False))
    assert code == 0, err
    assert "WORKER" in out
    wait_until(lambda: not processes.leftovers(), timeout=30,
               what="the cluster to stop after its driver exited")

    # shutdown() stops it while the driver lives on.
    proc = processes.start_driver(stopping_driver(True))
    assert proc.stdout.readline().startswith("WORKER"), proc.stderr.read()
    assert proc.stdout.readline() == "SHUT DOWN\n"
    wait_until(lambda: processes.leftovers() == [proc.pid], timeout=30,
               what="the cluster to stop after shutdown()")
    proc.kill()


@pytest.mark.parametrize("kwargs", [{"num_cpu": 2}, {"job_config": None}, {"bogus": 1}])
def test_init_rejects_unknown_keywords_with_type_error(new_cluster, kwargs):
    with pytest.raises(TypeError):
        loom.init(**kwargs)
    assert not loom.is_initialized()


@pytest.mark.parametrize(
    "kwargs", [{"num_cpus": -5}, {"num_gpus": -1}, {"resources": {"accel": -1.0}}]
)
def test_init_rejects_bad_values_with_value_error(new_cluster, kwargs):
    with pytest.raises(ValueError):
        loom.init(**kwargs)
    assert not loom.is_initialized()
    # The failed call leaves nothing behind: a good init works afterwards.
    new_cluster(num_cpus=1)
    assert loom.get(square.remote(3)) == 9


def test_init_auto_joins_a_running_cluster(head_node):
    driver = """
        import json, loom
        loom.init(address="auto")

        @loom.remote
        def square(x):
            return x * x

        print("RESULT", json.dumps({"cpus": loom.cluster_resources()["CPU"],
                                    "value": loom.get(square.remote(7))}))
        loom.shutdown()
    """
    for _ in range(2):  # the cluster outlives the first driver's shutdown
        code, out, err = head_node.run_driver(driver)
        assert code == 0, err
        line = next(x for x in out.splitlines() if x.startswith("RESULT "))
        assert line == 'RESULT {"cpus": 3.0, "value": 49}'


def test_init_on_a_machine_without_a_raylet_says_to_start_one(processes):
    # A head alone (loom-gcs, no raylet on this machine): a driver cannot
    # attach here, and is told to start a raylet or to run inside the cluster.
    bins = _worker._bin_dir() or str(REPO_ROOT / "build" / "bin")
    session = Path(processes.session_root) / "head"
    (session / "logs").mkdir(parents=True)
    gcs = subprocess.Popen([os.path.join(bins, "loom-gcs"), "--port", "0",
                            "--no-auth", "--session-dir", str(session)],
                           env=processes.env(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        ready = session / "gcs.ready"
        wait_until(lambda: ready.exists() and ready.read_text(), timeout=20,
                   what="loom-gcs to start")
        address = ready.read_text().split()[0]
        with pytest.raises(ConnectionError) as e:
            loom.init(address=address)
        message = str(e.value)
        assert (f"no raylet of the cluster at {address} runs on this machine"
                in message), message
        assert f"`loom start --address {address}`" in message, message
        assert "job submission" in message, message
        assert not loom.is_initialized()
    finally:
        gcs.terminate()
        gcs.wait(timeout=30)


# --- put / get / wait -------------------------------------------------------


def test_put_get_round_trip(loom_cluster):
    values = [0, -1, 3.5, "text", b"bytes", None, [1, [2, 3]], {"k": (1, 2)}, {1, 2}]
    refs = [loom.put(v) for v in values]
    assert all(isinstance(r, loom.ObjectRef) for r in refs)
    assert loom.get(refs) == values
    assert loom.get(refs[4]) == b"bytes"


def test_task_returns_object_ref_and_refs_as_arguments_are_resolved(loom_cluster):
    ref = square.remote(3)
    assert isinstance(ref, loom.ObjectRef)
    # A ref passed at top level arrives as its value; chains work.
    assert loom.get(add.remote(ref, loom.put(10))) == 19
    assert loom.get(square.remote(square.remote(square.remote(2)))) == 256


def test_ref_nested_in_an_argument_arrives_as_a_ref(loom_cluster):
    @loom.remote
    def inspect(holder):
        inner = holder["ref"]
        return isinstance(inner, loom.ObjectRef), loom.get(inner)

    assert loom.get(inspect.remote({"ref": loom.put("inside")})) == (True, "inside")


def test_wait_keeps_input_order_and_honours_num_returns(loom_cluster, tmp_path):
    gate = str(tmp_path / "gate")
    slow_a = wait_for_gate.remote(gate)
    fast_a = identity.remote("a")
    slow_b = wait_for_gate.remote(gate)
    fast_b = identity.remote("b")
    refs = [slow_a, fast_a, slow_b, fast_b]
    try:
        ready, unready = loom.wait(refs, num_returns=2, timeout=60)
        assert ready == [fast_a, fast_b]
        assert unready == [slow_a, slow_b]

        # Default num_returns is 1.
        ready, unready = loom.wait([slow_a, fast_b], timeout=60)
        assert ready == [fast_b] and unready == [slow_a]

        # A timeout returns what is ready so far, without raising.
        start = time.monotonic()
        ready, unready = loom.wait(refs, num_returns=3, timeout=0.5)
        elapsed = time.monotonic() - start
        assert ready == [fast_a, fast_b]
        assert unready == [slow_a, slow_b]
        assert 0.4 <= elapsed < 10
    finally:
        touch(gate)
    ready, unready = loom.wait(refs, num_returns=4, timeout=60)
    assert ready == refs and unready == []
    assert loom.get(refs) == [True, "a", True, "b"]


def test_get_with_timeout_returns_once_ready(loom_cluster):
    assert loom.get(square.remote(9), timeout=60) == 81
    assert loom.get([square.remote(i) for i in range(5)], timeout=60) == [0, 1, 4, 9, 16]


def test_get_timeout_does_not_cancel_the_task(loom_cluster, tmp_path):
    gate = str(tmp_path / "gate")
    ref = wait_for_gate.remote(gate)
    with pytest.raises(GetTimeoutError):
        loom.get(ref, timeout=0.2)
    touch(gate)
    assert loom.get(ref, timeout=60) is True


# --- nested and many tasks --------------------------------------------------


@loom.remote
def sum_to(n):
    if n <= 0:
        return 0
    return n + loom.get(sum_to.remote(n - 1))


@loom.remote
def fan_out(k):
    return sum(loom.get([square.remote(i) for i in range(k)]))


def test_nested_tasks(loom_cluster):
    assert loom.get(fan_out.remote(10), timeout=60) == sum(i * i for i in range(10))
    # Four parents on four CPUs, each waiting on children: parents blocked in
    # get must lend their CPU, or the children never run.
    assert loom.get([fan_out.remote(5) for _ in range(8)], timeout=90) == [30] * 8


def test_nesting_deeper_than_the_cpu_count(loom_cluster):
    assert loom.get(sum_to.remote(12), timeout=90) == 78


@pytest.mark.loom_timeout(300)
def test_thousands_of_tasks(loom_cluster):
    n = 2500
    refs = [square.remote(i) for i in range(n)]
    assert loom.get(refs, timeout=240) == [i * i for i in range(n)]
    # Chained: each task takes the previous one's result.
    ref = loom.put(0)
    for i in range(500):
        ref = add.remote(ref, 1)
    assert loom.get(ref, timeout=120) == 500


# --- num_returns ------------------------------------------------------------


@loom.remote(num_returns=3)
def three_values(x):
    return x, x + 1, x + 2


def test_num_returns(loom_cluster):
    refs = three_values.remote(10)
    assert isinstance(refs, list) and len(refs) == 3
    assert all(isinstance(r, loom.ObjectRef) for r in refs)
    assert loom.get(refs) == [10, 11, 12]
    assert loom.get(refs[2]) == 12

    pair = identity.options(num_returns=2).remote(("x", "y"))
    assert isinstance(pair, list) and len(pair) == 2
    assert loom.get(pair) == ["x", "y"]

    single = identity.options(num_returns=1).remote([1, 2])
    assert isinstance(single, loom.ObjectRef)
    assert loom.get(single) == [1, 2]


# --- cancel -----------------------------------------------------------------


@loom.remote
def spin_until(gate, started):
    touch(started)
    deadline = time.monotonic() + 120
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.05)
    return "finished"


@loom.remote
def mark_and_square(marker, x):
    touch(marker)
    return x * x


def test_cancel_a_queued_task(loom_cluster, tmp_path):
    gate = str(tmp_path / "gate")
    cpus = int(loom.cluster_resources()["CPU"])
    blockers = [wait_for_gate.remote(gate, str(tmp_path / f"b{i}")) for i in range(cpus)]
    ran = tmp_path / "ran"
    try:
        # Every CPU is held: the next task cannot start until the gate opens.
        wait_until(lambda: all((tmp_path / f"b{i}").exists() for i in range(cpus)),
                   timeout=60, what="blockers to start")
        queued = mark_and_square.remote(str(ran), 7)
        loom.cancel(queued)
        with pytest.raises(TaskCancelledError):
            loom.get(queued, timeout=60)
    finally:
        touch(gate)
    assert loom.get(blockers, timeout=60) == [True] * cpus
    # The CPUs are free again and run later tasks; the cancelled one never ran.
    assert loom.get([square.remote(i) for i in range(2 * cpus)], timeout=60) == [
        i * i for i in range(2 * cpus)]
    assert not ran.exists()


@pytest.mark.parametrize("force", [False, True])
def test_cancel_a_running_task(loom_cluster, tmp_path, force):
    gate, started = str(tmp_path / "gate"), str(tmp_path / "started")
    ref = spin_until.remote(gate, started)
    try:
        wait_until(lambda: os.path.exists(started), timeout=60, what="task to start")
        start = time.monotonic()
        loom.cancel(ref, force=force)
        with pytest.raises(TaskCancelledError):
            loom.get(ref, timeout=60)
        assert time.monotonic() - start < 30
    finally:
        touch(gate)
    # The cluster goes on working.
    assert loom.get([square.remote(i) for i in range(8)], timeout=60) == [
        i * i for i in range(8)
    ]


# --- cluster and runtime information ----------------------------------------


def is_hex(s):
    return isinstance(s, str) and len(s) > 0 and all(c in "0123456789abcdef" for c in s)


def test_cluster_and_available_resources(loom_cluster, tmp_path):
    total = loom.cluster_resources()
    assert total["CPU"] == 4.0
    wait_until(lambda: loom.available_resources().get("CPU") == 4.0,
               timeout=30, what="all CPUs to be free")

    gate, started = str(tmp_path / "gate"), str(tmp_path / "started")
    ref = wait_for_gate.remote(gate, started)
    try:
        wait_until(lambda: os.path.exists(started), timeout=60, what="task to start")
        wait_until(lambda: loom.available_resources().get("CPU", 0.0) <= 3.0,
                   timeout=30, what="a CPU to be taken")
        assert loom.cluster_resources()["CPU"] == 4.0
    finally:
        touch(gate)
    assert loom.get(ref, timeout=60) is True
    wait_until(lambda: loom.available_resources().get("CPU") == 4.0,
               timeout=30, what="the CPU to come back")


def test_nodes(loom_cluster):
    nodes = loom.nodes()
    assert isinstance(nodes, list) and len(nodes) == 1
    node = nodes[0]
    assert is_hex(node["NodeID"])
    assert node["Alive"] is True
    assert node["Resources"]["CPU"] == 4.0
    assert node["NodeID"] == loom.get_runtime_context().get_node_id()


@loom.remote
def task_context():
    ctx = loom.get_runtime_context()
    return ctx.get_job_id(), ctx.get_task_id(), ctx.get_actor_id(), ctx.get_node_id()


@loom.remote
class ContextActor:
    def context(self):
        ctx = loom.get_runtime_context()
        return ctx.get_job_id(), ctx.get_task_id(), ctx.get_actor_id(), ctx.get_node_id()


def test_runtime_context(loom_cluster):
    ctx = loom.get_runtime_context()
    job, node = ctx.get_job_id(), ctx.get_node_id()
    assert is_hex(job) and is_hex(node)
    assert ctx.get_task_id() is None
    assert ctx.get_actor_id() is None

    (job1, task1, actor1, node1), (job2, task2, actor2, _) = loom.get(
        [task_context.remote(), task_context.remote()])
    assert job1 == job2 == job and node1 == node
    assert is_hex(task1) and is_hex(task2) and task1 != task2
    assert actor1 is None and actor2 is None

    a, b = ContextActor.remote(), ContextActor.remote()
    try:
        (ja, ta1, aa1, na), (_, ta2, aa2, _) = loom.get(
            [a.context.remote(), a.context.remote()], timeout=60)
        (_, _, ab, _) = loom.get(b.context.remote(), timeout=60)
        assert ja == job and na == node
        assert is_hex(aa1) and aa1 == aa2 and is_hex(ab) and ab != aa1
        assert is_hex(ta1) and is_hex(ta2) and ta1 != ta2
    finally:
        loom.kill(a)
        loom.kill(b)


@loom.remote(num_gpus=1)
def gpu_ids_after(gate, started):
    touch(started)
    wait_for_file(gate, timeout=60)
    return loom.get_gpu_ids()


@loom.remote
def gpu_ids():
    return loom.get_gpu_ids()


def test_gpu_ids_are_handed_out_per_task(new_cluster, tmp_path):
    # Declared GPUs need no hardware: ids are 0..num_gpus-1.
    new_cluster(num_cpus=4, num_gpus=2)
    assert loom.cluster_resources()["GPU"] == 2.0
    gate = str(tmp_path / "gate")
    refs = [gpu_ids_after.remote(gate, str(tmp_path / f"s{i}")) for i in range(2)]
    # Both hold their GPU at once, so they must have been given different ones.
    wait_until(lambda: all((tmp_path / f"s{i}").exists() for i in range(2)),
               timeout=60, what="both GPU tasks to start")
    touch(gate)
    first, second = loom.get(refs, timeout=60)
    assert len(first) == 1 and len(second) == 1
    assert all(isinstance(i, int) for i in first + second)
    assert sorted(first + second) == [0, 1]
    assert loom.get(gpu_ids.remote(), timeout=60) == []
    assert sorted(loom.get(gpu_ids.options(num_gpus=2).remote(), timeout=60)) == [0, 1]


@loom.remote(num_gpus=1)
def cuda_view():
    """What CUDA shows this task: its GPU ids, CUDA_VISIBLE_DEVICES, and the
    number of devices the driver API counts."""
    cuda = ctypes.CDLL("libcuda.so.1")
    count = ctypes.c_int(0)
    assert cuda.cuInit(0) == 0
    assert cuda.cuDeviceGetCount(ctypes.byref(count)) == 0
    return loom.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES"), count.value


@pytest.mark.skipif(not has_gpu(), reason="needs an NVIDIA GPU")
def test_gpu_task_sees_exactly_its_gpu(new_cluster):
    new_cluster(num_cpus=2, num_gpus=1)
    ids, visible, count = loom.get(cuda_view.remote(), timeout=120)
    assert ids == [0]
    assert visible == "0"
    assert count == 1
