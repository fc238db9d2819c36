# tests/python/test_workers.py
#
# Worker processes: they run the driver's interpreter with its sys.path and
# working directory, stream their stdout to the driver with a pid prefix,
# and serve many tasks each.

import collections
import os
import re
import sys
import uuid

import pytest

import loom
from conftest import (child_pids, driver_output, process_name, set_env,
                      wait_until)


@loom.remote
def use_user_module(name):
    import user_module

    return user_module.greet(name), user_module.LOADED_FROM


@loom.remote
def interpreter_and_cwd():
    return os.path.abspath(sys.executable), sys.prefix, os.path.realpath(os.getcwd())


def test_task_imports_a_module_next_to_the_tests(loom_cluster):
    import user_module

    greeting, loaded_from = loom.get(use_user_module.remote("loom"), timeout=60)
    assert greeting == "hello, loom"
    assert loaded_from == user_module.LOADED_FROM


def test_workers_run_the_drivers_interpreter_in_its_directory(loom_cluster):
    executable, prefix, cwd = loom.get(interpreter_and_cwd.remote(), timeout=60)
    assert executable == os.path.abspath(sys.executable)
    assert prefix == sys.prefix  # the same virtual environment
    assert cwd == os.path.realpath(os.getcwd())


@loom.remote
def import_by_name(module_name):
    module = __import__(module_name)
    return module.VALUE, os.path.realpath(os.getcwd())


def test_workers_take_sys_path_and_cwd_from_init_time(new_cluster, tmp_path, monkeypatch):
    lib, work = tmp_path / "lib", tmp_path / "work"
    lib.mkdir()
    work.mkdir()
    module_name = f"generated_{uuid.uuid4().hex[:12]}"
    (lib / f"{module_name}.py").write_text("VALUE = 'from the driver path'\n")
    monkeypatch.syspath_prepend(str(lib))
    monkeypatch.chdir(work)
    new_cluster(num_cpus=2)
    value, cwd = loom.get(import_by_name.remote(module_name), timeout=60)
    assert value == "from the driver path"
    assert cwd == os.path.realpath(work)


def stdout_reader(monkeypatch):
    """What the driver prints on stdout from now on (conftest.driver_output)."""
    read = driver_output(monkeypatch)
    return lambda: read()[0]


@loom.remote
def say(text):
    print(text)
    return os.getpid()


def test_worker_stdout_reaches_the_driver_with_its_pid(loom_cluster, monkeypatch):
    read = stdout_reader(monkeypatch)
    token = f"hello-{uuid.uuid4().hex}"
    pid = loom.get(say.remote(token), timeout=60)
    # "(pid=1234) hello-..." (a task name before "pid=" is accepted too).
    pattern = re.compile(r"^\((?:\S+ )?pid=%d(?:,[^)]*)?\) %s$" % (pid, re.escape(token)),
                         re.MULTILINE)
    wait_until(lambda: pattern.search(read()), timeout=15, interval=0.2,
               what=f"{token!r} on the driver's stdout")


@loom.remote
class Printer:
    def say(self, text):
        print(text)  # not flushed, as users write it: it must arrive while the actor lives
        return os.getpid()


def test_actor_stdout_reaches_the_driver_with_its_pid(loom_cluster, monkeypatch):
    read = stdout_reader(monkeypatch)
    printer = Printer.remote()
    try:
        token = f"from-actor-{uuid.uuid4().hex}"
        pid = loom.get(printer.say.remote(token), timeout=60)
        pattern = re.compile(r"^\((?:\S+ )?pid=%d(?:,[^)]*)?\) %s$" % (pid, re.escape(token)),
                             re.MULTILINE)
        wait_until(lambda: pattern.search(read()), timeout=15, interval=0.2,
                   what=f"{token!r} on the driver's stdout")
    finally:
        loom.kill(printer)


def test_stdout_of_many_tasks_arrives_in_full(loom_cluster, monkeypatch):
    read = stdout_reader(monkeypatch)
    tag = uuid.uuid4().hex[:8]
    pids = loom.get([say.remote(f"line-{tag}-{i}") for i in range(50)], timeout=60)

    def all_arrived():
        text = read()
        return all(re.search(r"pid=%d\b[^)]*\) line-%s-%d$" % (pid, tag, i), text, re.MULTILINE)
                   for i, pid in enumerate(pids))

    wait_until(all_arrived, timeout=20, interval=0.2, what="every task's line")


@loom.remote
def my_pid():
    return os.getpid()


def test_workers_are_reused(loom_cluster):
    pids = [loom.get(my_pid.remote(), timeout=60) for _ in range(40)]
    counts = collections.Counter(pids)
    assert os.getpid() not in counts
    # No process per task: a handful of workers serve them all.
    assert len(counts) <= 4, counts
    assert counts.most_common(1)[0][1] >= 10, counts


@loom.remote
def read_both(refs):
    loom.get(refs[0])
    loom.get(refs[1])
    return os.getpid()


def test_a_get_of_objects_at_hand_does_not_start_more_workers(new_cluster):
    # A get inside a task lends the task's CPU to the raylet only when it
    # must wait: objects already in the node's store, or answered at once
    # by their owner, keep it, so no extra workers start for them.
    new_cluster(num_cpus=2)
    big = loom.put(bytes(8 << 20))  # in the store
    small = loom.put(5)
    pids = loom.get([read_both.remote([big, small]) for _ in range(40)],
                    timeout=120)
    # The two CPUs' workers, and room for one more on a busy machine
    # (every get lent the CPU before: five or more).
    assert len(set(pids)) <= 3, collections.Counter(pids)


NUMPY_IN_WORKERS = """
    import sys
    {imports}
    import loom

    loom.init(num_cpus=1)

    @loom.remote
    def has_numpy():
        return "numpy" in sys.modules

    print("NUMPY", loom.get(has_numpy.remote(), timeout=60))
    loom.shutdown()
"""


@pytest.mark.parametrize("imports,expected", [("", "False"),
                                              ("import numpy", "True")])
def test_workers_import_numpy_only_when_the_driver_did(processes, imports,
                                                       expected):
    code, out, err = processes.run_driver(
        NUMPY_IN_WORKERS.format(imports=imports))
    assert code == 0, err
    assert f"NUMPY {expected}" in out, out


@loom.remote
def pid_and_devices():
    return os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES")


def test_a_worker_that_ran_cpu_tasks_is_not_given_a_gpu_task(new_cluster):
    # Declared GPUs (no device is needed to schedule on them).
    new_cluster(num_cpus=1, num_gpus=1)
    cpu_pids = {loom.get(pid_and_devices.remote())[0] for _ in range(3)}
    gpu_pid, devices = loom.get(pid_and_devices.options(num_gpus=1).remote())
    assert devices == "0"
    assert gpu_pid not in cpu_pids


def _private_kib():
    """This process's own pages (not shared with its fork server)."""
    kib = 0
    for line in open("/proc/self/smaps_rollup"):
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            kib += int(line.split()[1])
    return kib


@loom.remote(num_cpus=0)
class Collector:
    def collect(self):
        import gc

        before = _private_kib()
        gc.collect()
        after = _private_kib()
        # The worker's own cycles are still found.
        a, b = [], []
        a.append(b)
        b.append(a)
        del a, b
        return after - before, gc.collect()


def test_a_full_collection_in_a_worker_copies_no_shared_heap(loom_cluster):
    # A worker shares the fork server's Python heap. A full collection
    # writes to the header of every object it scans: without the server's
    # objects frozen out of its sight, the first one in each worker copied
    # the whole shared heap (1.5 MiB private, measured; 60 KiB now).
    actor = Collector.remote()
    grown_kib, found = loom.get(actor.collect.remote(), timeout=60)
    assert grown_kib < 512, grown_kib
    assert found >= 2


@loom.remote
def niceness():
    return os.getpriority(os.PRIO_PROCESS, 0)


@loom.remote(num_cpus=0)
class Niceness:
    def get(self):
        return os.getpriority(os.PRIO_PROCESS, 0), os.getppid()


def _niceness_of_threads(pid):
    # Linux keeps a niceness per thread: every one of them, from /proc.
    out = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = open(f"/proc/{pid}/task/{task}/stat").read()
            out.add(int(fields.rsplit(")", 1)[1].split()[16]))
        except OSError:
            pass  # a thread that ended meanwhile
    return out


@pytest.mark.parametrize("told, expected", [(None, 15), ("0", 0), ("5", 5)])
def test_workers_run_below_the_daemons_priority(new_cluster, monkeypatch,
                                                told, expected):
    # Busy workers must not starve the raylet's heartbeats (nor the head):
    # the workers and fork servers a raylet starts are 15 nicer than it (as
    # Ray's), or $LOOM_WORKER_NICENESS where the cluster starts.
    set_env(monkeypatch, "LOOM_WORKER_NICENESS", told)
    new_cluster(num_cpus=1)
    ours = os.getpriority(os.PRIO_PROCESS, 0)  # the daemons', as they start
    expected = min(19, ours + expected)
    assert loom.get(niceness.remote(), timeout=60) == expected
    mine, fork_server = loom.get(Niceness.remote().get.remote(), timeout=60)
    assert mine == expected
    daemons = {process_name(p): p for p in child_pids(os.getpid())}
    raylet = daemons["loom-raylet"]
    assert _niceness_of_threads(raylet) == {ours}
    assert _niceness_of_threads(daemons["loom-gcs"]) == {ours}
    # The actor's fork server, and every thread of the C++ workers the
    # raylet prestarted (threads inherit it from the main one).
    assert _niceness_of_threads(fork_server) == {expected}
    cpp = [p for p in child_pids(raylet) if process_name(p) == "loom-worker"]
    assert cpp, "no prestarted C++ worker"
    for pid in cpp:
        assert _niceness_of_threads(pid) == {expected}, pid
