# tests/python/test_ray_corners.py
#
# What Ray users rely on around the edges of the API, checked against
# Ray's documented behaviour: math libraries capped to a worker's CPUs,
# clusters that start with an http_proxy set, ids that never repeat after
# shutdown() and init() in one process, and the API's small corners
# (wait([]), placement group equality, TypeError for options of the wrong
# type, async def remote functions, subclassing actor classes, auto-init).

import gc
import json
import os
import pickle

import pytest

import loom
from loom.exceptions import LoomError
from loom.util.placement_group import placement_group, remove_placement_group

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS")

# Runs in a driver of its own: the thread variables each task and actor
# sees, its OpenBLAS's thread count (numpy's, read from the library numpy
# loaded; None without one) and its pid.
PROBE_DRIVER = r'''
import ctypes, json, os
import numpy
import loom

VARS = %(vars)r

def blas_threads():
    paths = set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and "openblas" in os.path.basename(parts[-1]):
                paths.add(parts[-1])
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_",
                     "scipy_openblas_get_num_threads",
                     "openblas_get_num_threads64_", "openblas_get_num_threads"):
            fn = getattr(lib, name, None)
            if fn is not None:
                # A matmul first: the pool the library really uses.
                numpy.ones((64, 64)) @ numpy.ones((64, 64))
                return int(fn())
    return None

def probe():
    return {"pid": os.getpid(), "blas": blas_threads(),
            "env": {v: os.environ.get(v) for v in VARS}}

loom.init(num_cpus=2)
task = loom.remote(probe)

class Model:
    def probe(self):
        return probe()

out = {"tasks": [], "driver": probe()}
for cpus in %(cpus)r:
    seen = loom.get(task.options(num_cpus=cpus).remote(), timeout=60)
    seen["cpus"] = cpus
    out["tasks"].append(seen)
model = loom.remote(Model).remote()
out["actor"] = loom.get(model.probe.remote(), timeout=60)
model2 = loom.remote(Model).options(num_cpus=2).remote()
out["actor_2cpus"] = loom.get(model2.probe.remote(), timeout=60)
print("RESULT " + json.dumps(out))
'''


def run_probe(processes, cpus):
    rc, out, err = processes.run_driver(
        PROBE_DRIVER % {"vars": THREAD_VARIABLES, "cpus": cpus})
    assert rc == 0, f"stdout:\n{out}\nstderr:\n{err}"
    line = [l for l in out.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def has_openblas():
    import numpy  # noqa: F401 - the suite's venv has it
    with open("/proc/self/maps") as f:
        return any("openblas" in line for line in f)


def test_workers_cap_math_threads_to_their_lease(processes, monkeypatch):
    for v in THREAD_VARIABLES:
        monkeypatch.delenv(v, raising=False)
    # Alternating leases of 1 and 2 CPUs, so that workers are reused for a
    # lease of another size; 0.5 CPU still gets a thread.
    cpus = [1, 2, 1, 2, 0.5, 2, 1]
    out = run_probe(processes, cpus)
    blas = has_openblas()
    for seen in out["tasks"]:
        cap = max(1, int(seen["cpus"]))
        assert seen["env"] == {v: str(cap) for v in THREAD_VARIABLES}, seen
        if blas:
            assert seen["blas"] == cap, seen
    # A reused worker took the cap of each new lease (above): at least one
    # process ran leases of both sizes.
    caps_by_pid = {}
    for seen in out["tasks"]:
        caps_by_pid.setdefault(seen["pid"], set()).add(max(1, int(seen["cpus"])))
    assert any(len(c) > 1 for c in caps_by_pid.values()), out["tasks"]
    # An actor holds no CPU by default (as in Ray): one thread. With
    # num_cpus=2, two.
    assert out["actor"]["env"]["OMP_NUM_THREADS"] == "1"
    assert out["actor_2cpus"]["env"]["OMP_NUM_THREADS"] == "2"
    if blas:
        assert out["actor"]["blas"] == 1
        assert out["actor_2cpus"]["blas"] == 2
    # The driver is not capped.
    assert out["driver"]["env"] == {v: None for v in THREAD_VARIABLES}


def test_a_users_thread_setting_is_left_alone(processes, monkeypatch):
    for v in THREAD_VARIABLES:
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    out = run_probe(processes, [1])
    seen = out["tasks"][0]
    expected = {v: None for v in THREAD_VARIABLES}
    expected["OMP_NUM_THREADS"] = "2"
    assert seen["env"] == expected
    assert out["actor"]["env"] == expected
    if has_openblas():
        # OpenBLAS took the user's setting (at most a thread per core).
        assert seen["blas"] == min(2, os.cpu_count())
        assert out["actor"]["blas"] == min(2, os.cpu_count())


def test_a_cluster_starts_with_a_dead_http_proxy_set(processes, monkeypatch):
    dead = "http://127.0.0.1:9"  # discard port: nothing answers
    for v in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
              "grpc_proxy", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(v, dead)
    for v in ("no_proxy", "NO_PROXY", "no_grpc_proxy"):
        monkeypatch.delenv(v, raising=False)
    rc, out, err = processes.run_driver("""
        import loom
        loom.init(num_cpus=1)

        @loom.remote
        def add(a, b):
            return a + b

        @loom.remote
        class Box:
            def get(self):
                return 7

        print("SUM", loom.get(add.remote(2, 3), timeout=60))
        box = Box.remote()
        print("BOX", loom.get(box.get.remote(), timeout=60))
    """, timeout=120)
    assert rc == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert "SUM 5" in out and "BOX 7" in out


# --- ids across shutdown() and init() ----------------------------------------


@loom.remote
class Counter:
    def __init__(self, start):
        self.value = start

    def get(self):
        return self.value

    def pid(self):
        return os.getpid()


def test_ids_never_repeat_after_reinit(new_cluster):
    new_cluster(num_cpus=2)
    old_actor = Counter.remote(1)
    assert loom.get(old_actor.get.remote(), timeout=60) == 1
    old_put = loom.put("x")
    old_other = Counter.remote(0)
    loom.shutdown()

    new_cluster(num_cpus=2)
    actor = Counter.remote(2)
    pid = loom.get(actor.pid.remote(), timeout=60)
    new_put = loom.put("x")
    # A put's id is [the driver's root task][index]: the root (past the 4
    # job bytes) differs, so even a head that hands out the same job
    # number makes no id the last driver made.
    assert new_put.hex()[8:32] != old_put.hex()[8:32]
    assert new_put != old_put
    # Dropping the handles kept from the first cluster does not touch the
    # second's actor.
    del old_actor, old_other, old_put
    gc.collect()
    for _ in range(20):
        assert loom.get(actor.get.remote(), timeout=30) == 2
    assert loom.get(actor.pid.remote(), timeout=30) == pid


# --- small corners -------------------------------------------------------------


def test_wait_on_nothing_returns_two_empty_lists(loom_cluster):
    assert loom.wait([]) == ([], [])
    assert loom.wait([], num_returns=1, timeout=0) == ([], [])


def test_placement_groups_compare_and_hash_by_id(loom_cluster):
    pg = placement_group([{"CPU": 1}])
    other = placement_group([{"CPU": 1}])
    try:
        copy = pickle.loads(pickle.dumps(pg))
        assert copy is not pg
        assert copy == pg and hash(copy) == hash(pg)
        assert pg != other
        assert len({pg, copy, other}) == 2
        assert pg != pg.id  # not equal to its id string
    finally:
        remove_placement_group(pg)
        remove_placement_group(other)


def plain(x):
    return x


class Plain:
    pass


@pytest.mark.parametrize("options", [
    {"num_cpus": "2"}, {"num_gpus": "1"}, {"max_retries": 1.5},
    {"resources": [("x", 1)]}, {"resources": {"x": "1"}}, {"name": 3},
    {"num_returns": "2"}, {"retry_exceptions": "yes"},
    {"scheduling_strategy": 5}, {"label_selector": ["zone"]},
])
def test_options_of_the_wrong_type_raise_type_error(options):
    with pytest.raises(TypeError):
        loom.remote(**options)(plain)
    with pytest.raises(TypeError):
        loom.remote(plain).options(**options)


@pytest.mark.parametrize("options", [
    {"num_cpus": "2"}, {"max_restarts": 0.5}, {"namespace": 1},
    {"lifetime": 1}, {"max_concurrency": "4"},
])
def test_actor_options_of_the_wrong_type_raise_type_error(options):
    with pytest.raises(TypeError):
        loom.remote(**options)(Plain)
    with pytest.raises(TypeError):
        loom.remote(Plain).options(**options)


@pytest.mark.parametrize("target,options", [
    (plain, {"num_cpus": -1}), (plain, {"max_retries": -2}),
    (plain, {"scheduling_strategy": "PACKED"}),
    (Plain, {"lifetime": "forever"}), (Plain, {"max_concurrency": 0}),
])
def test_options_out_of_range_still_raise_value_error(target, options):
    with pytest.raises(ValueError):
        loom.remote(**options)(target)


def test_async_def_remote_functions_are_refused_at_decoration():
    async def fetch():
        return 1

    async def stream():
        yield 1

    for fn in (fetch, stream):
        with pytest.raises(ValueError, match="asyncio.run"):
            loom.remote(fn)
        with pytest.raises(ValueError, match="async def"):
            loom.remote(num_cpus=1)(fn)


def test_subclassing_an_actor_class_is_a_clear_type_error():
    @loom.remote
    class Base:
        def f(self):
            return 1

    with pytest.raises(TypeError, match="subclass the original class"):
        class Derived(Base):  # noqa: F841 - the class statement raises
            pass

    # The documented way: subclass the plain class, then make it an actor.
    class PlainBase:
        def f(self):
            return 1

    class PlainDerived(PlainBase):
        def g(self):
            return 2

    loom.remote(PlainDerived)  # fine


def test_first_use_starts_a_local_cluster(no_cluster):
    assert not loom.is_initialized()
    ref = loom.put(41)
    assert loom.is_initialized()
    assert loom.get(ref) == 41
    loom.shutdown()
    assert not loom.is_initialized()
    # A task's .remote() does too.
    assert loom.get(loom.remote(plain).remote(5), timeout=60) == 5
    loom.shutdown()


def test_auto_init_can_be_turned_off(no_cluster, monkeypatch):
    monkeypatch.setenv("LOOM_ENABLE_AUTO_CONNECT", "0")
    with pytest.raises(LoomError, match="not initialized"):
        loom.put(1)
    assert not loom.is_initialized()
