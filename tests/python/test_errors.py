# tests/python/test_errors.py
#
# Errors as the user meets them: remote exceptions re-raised with their type
# and traceback, retries after crashes and exceptions, timeouts, infeasible
# tasks, lost owners, and Ctrl-C in a driver blocked in get.

import os
import signal
import subprocess
import time

import pytest

import loom
from loom import exceptions
from loom.exceptions import (
    GetTimeoutError,
    InfeasibleError,
    LoomError,
    OwnerDiedError,
    TaskError,
    WorkerCrashedError,
)
from conftest import process_gone, touch, wait_for_file, wait_until


class QuotaError(Exception):
    """A user-defined exception type, raised remotely."""


@loom.remote
def raise_value_error_in_a_task(x):
    if x > 0:
        raise ValueError(f"bad value {x} for the test")
    return x


class HardQuotaError(QuotaError):
    """A subclass of a type listed in retry_exceptions."""


@loom.remote
def raise_quota_error():
    raise QuotaError("over quota: 42 of 40")


@loom.remote
def identity(x):
    return x


def test_exception_hierarchy():
    for name in ["TaskError", "WorkerCrashedError", "ActorDiedError", "GetTimeoutError",
                 "ObjectStoreFullError", "OwnerDiedError", "TaskCancelledError",
                 "InfeasibleError", "PendingCallsLimitExceededError"]:
        cls = getattr(exceptions, name)
        assert issubclass(cls, LoomError), name
    assert issubclass(LoomError, Exception)
    assert issubclass(GetTimeoutError, TimeoutError)


def test_remote_exception_keeps_its_type_and_traceback(loom_cluster):
    ref = raise_value_error_in_a_task.remote(7)
    with pytest.raises(ValueError) as caught:  # caught as the original type
        loom.get(ref)
    err = caught.value
    assert isinstance(err, TaskError)
    assert isinstance(err, LoomError)
    text = str(err)
    assert "raise_value_error_in_a_task" in text  # the remote function's name
    assert 'raise ValueError(f"bad value {x} for the test")' in text  # the line
    assert "bad value 7 for the test" in text  # the message


def test_user_defined_exception_type(loom_cluster):
    try:
        loom.get(raise_quota_error.remote())
    except QuotaError as err:
        assert isinstance(err, TaskError)
        assert "over quota: 42 of 40" in str(err)
        assert "raise_quota_error" in str(err)
    else:
        pytest.fail("QuotaError was not raised")


class RangeError(Exception):
    """An exception whose __init__ takes other arguments than the args it
    passes up: pickle alone cannot rebuild it (cls(*args) fails)."""

    def __init__(self, low, high):
        super().__init__(f"value outside [{low}, {high}]")
        self.low = low
        self.high = high


@loom.remote
def raise_range_error(low, high):
    raise RangeError(low, high)


def test_exception_with_a_two_argument_init_keeps_its_type(loom_cluster):
    try:
        loom.get(raise_range_error.remote(3, 9))
    except RangeError as err:
        assert isinstance(err, TaskError)
        assert isinstance(err.cause, RangeError)
        assert (err.low, err.high) == (3, 9)  # the attributes survive
        assert (err.cause.low, err.cause.high) == (3, 9)
        text = str(err)
        assert "value outside [3, 9]" in text  # the message
        assert "raise RangeError(low, high)" in text  # the remote traceback
    else:
        pytest.fail("RangeError was not raised")


@loom.remote
class Divider:
    def divide(self, a, b):
        return a / b


def test_actor_method_exception(loom_cluster):
    d = Divider.remote()
    try:
        with pytest.raises(ZeroDivisionError) as caught:
            loom.get(d.divide.remote(1, 0))
        assert isinstance(caught.value, TaskError)
        assert "divide" in str(caught.value)
        # The actor survives an exception in a method.
        assert loom.get(d.divide.remote(6, 3)) == 2
    finally:
        loom.kill(d)


def test_failed_argument_fails_the_dependent_task(loom_cluster):
    upstream = raise_value_error_in_a_task.remote(3)
    downstream = identity.remote(upstream)
    with pytest.raises(ValueError) as caught:
        loom.get(downstream)
    assert "bad value 3 for the test" in str(caught.value)


def test_get_of_a_list_raises_the_failure(loom_cluster):
    refs = [identity.remote(1), raise_value_error_in_a_task.remote(2), identity.remote(3)]
    with pytest.raises(ValueError):
        loom.get(refs)


# --- retries ------------------------------------------------------------------


def _attempt(marker_dir):
    """Counts attempts in marker_dir; returns this attempt's number (1, 2...)."""
    n = len(os.listdir(marker_dir)) + 1
    touch(os.path.join(marker_dir, f"attempt-{n}-{os.getpid()}"))
    return n


@loom.remote(max_retries=2)
def exit_on_first_attempt(marker_dir):
    if _attempt(marker_dir) == 1:
        os._exit(1)
    return "second attempt", os.getpid()


def test_max_retries_after_worker_exit(loom_cluster, tmp_path):
    result, pid = loom.get(exit_on_first_attempt.remote(str(tmp_path)), timeout=90)
    assert result == "second attempt"
    attempts = sorted(os.listdir(tmp_path))
    assert len(attempts) == 2
    assert attempts[0].split("-")[2] != str(pid)  # the first worker died


@loom.remote(max_retries=3)
def hang_on_first_attempt(marker_dir, pid_file):
    if _attempt(marker_dir) == 1:
        with open(pid_file + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(pid_file + ".tmp", pid_file)
        time.sleep(300)
        return "not killed"
    return "retried"


def test_kill_9_of_a_worker_running_a_task_is_retried(loom_cluster, tmp_path):
    attempts_dir = tmp_path / "attempts"
    attempts_dir.mkdir()
    pid_file = str(tmp_path / "pid")
    ref = hang_on_first_attempt.remote(str(attempts_dir), pid_file)
    wait_until(lambda: os.path.exists(pid_file), timeout=60, what="the task to start")
    os.kill(int(open(pid_file).read()), signal.SIGKILL)
    assert loom.get(ref, timeout=90) == "retried"


@loom.remote(max_retries=0)
def exit_always():
    os._exit(1)


def test_worker_crash_without_retries(loom_cluster):
    with pytest.raises(WorkerCrashedError):
        loom.get(exit_always.remote(), timeout=90)
    # The node replaces the worker: tasks go on running.
    assert loom.get(identity.remote("after"), timeout=60) == "after"


@loom.remote
def raise_on_first_attempt(marker_dir):
    if _attempt(marker_dir) == 1:
        raise ValueError("transient")
    return "ok"


def test_retry_exceptions(loom_cluster, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    retried = raise_on_first_attempt.options(max_retries=2, retry_exceptions=True)
    assert loom.get(retried.remote(str(a)), timeout=60) == "ok"
    assert len(os.listdir(a)) == 2

    # Without retry_exceptions an exception is final, retries or not.
    not_retried = raise_on_first_attempt.options(max_retries=2)
    with pytest.raises(ValueError):
        loom.get(not_retried.remote(str(b)), timeout=60)
    assert len(os.listdir(b)) == 1


@loom.remote(max_retries=2, retry_exceptions=True)
def always_raise(marker_dir):
    _attempt(marker_dir)
    raise KeyError("persistent")


def test_retry_exceptions_stops_after_max_retries(loom_cluster, tmp_path):
    with pytest.raises(KeyError):
        loom.get(always_raise.remote(str(tmp_path)), timeout=60)
    assert len(os.listdir(tmp_path)) == 3  # the first try and two retries


@loom.remote(max_retries=-1, retry_exceptions=True)
def raise_five_times(marker_dir):
    if _attempt(marker_dir) <= 5:
        raise ValueError("transient")
    return "ok"


def test_retry_exceptions_with_max_retries_minus_one_retries_until_success(
        loom_cluster, tmp_path):
    assert loom.get(raise_five_times.remote(str(tmp_path)), timeout=60) == "ok"
    assert len(os.listdir(tmp_path)) == 6


@loom.remote
def raise_once(marker_dir, kind):
    if _attempt(marker_dir) == 1:
        raise {"quota": QuotaError, "hard": HardQuotaError,
               "key": KeyError}[kind]("first attempt")
    return "ok"


def test_retry_exceptions_list_retries_only_the_listed_types(loom_cluster, tmp_path):
    listed, subclass, unlisted = (tmp_path / d for d in ("listed", "subclass", "unlisted"))
    for d in (listed, subclass, unlisted):
        d.mkdir()
    task = raise_once.options(max_retries=2, retry_exceptions=[QuotaError])
    assert loom.get(task.remote(str(listed), "quota"), timeout=60) == "ok"
    assert len(os.listdir(listed)) == 2
    assert loom.get(task.remote(str(subclass), "hard"), timeout=60) == "ok"
    assert len(os.listdir(subclass)) == 2
    with pytest.raises(KeyError):
        loom.get(task.remote(str(unlisted), "key"), timeout=60)
    assert len(os.listdir(unlisted)) == 1


@loom.remote
def exit_every_time(marker_dir):
    _attempt(marker_dir)
    os._exit(1)


@pytest.mark.loom_timeout(180)
def test_default_max_retries_is_three(loom_cluster, tmp_path):
    with pytest.raises(WorkerCrashedError, match="3 retries are used up"):
        loom.get(exit_every_time.remote(str(tmp_path)), timeout=150)
    assert len(os.listdir(tmp_path)) == 4  # the first try and three retries


@loom.remote(max_retries=-1)
def exit_five_times(marker_dir):
    if _attempt(marker_dir) <= 5:
        os._exit(1)
    return "survived"


@pytest.mark.loom_timeout(180)
def test_max_retries_minus_one_retries_worker_deaths_until_success(loom_cluster, tmp_path):
    assert loom.get(exit_five_times.remote(str(tmp_path)), timeout=150) == "survived"
    assert len(os.listdir(tmp_path)) == 6


# --- timeouts and infeasible tasks ------------------------------------------


def test_get_timeout(loom_cluster, tmp_path):
    gate = str(tmp_path / "gate")

    @loom.remote
    def blocked(gate):
        return wait_for_file(gate)

    ref = blocked.remote(gate)
    try:
        start = time.monotonic()
        with pytest.raises(GetTimeoutError):
            loom.get(ref, timeout=0.5)
        elapsed = time.monotonic() - start
        assert 0.4 <= elapsed < 15
        with pytest.raises(TimeoutError):  # also a builtin TimeoutError
            loom.get([identity.remote(1), ref], timeout=0.3)
    finally:
        touch(gate)
    assert loom.get(ref, timeout=60) is True


@pytest.mark.parametrize("kind", ["custom", "gpu"])
def test_infeasible_task_fails_promptly(loom_cluster, kind):
    if kind == "custom":
        task = identity.options(resources={"nope": 1})
    else:
        gpus = int(loom.cluster_resources().get("GPU", 0))
        task = identity.options(num_gpus=gpus + 8)
    ref = task.remote(1)
    start = time.monotonic()
    with pytest.raises(InfeasibleError):
        loom.get(ref, timeout=30)
    assert time.monotonic() - start < 30
    assert loom.get(identity.remote(2), timeout=60) == 2


# --- lost owners --------------------------------------------------------------


@loom.remote
class Owner:
    def make(self):
        return [loom.put(b"x" * (1 << 20))], os.getpid()


def test_owner_died(loom_cluster):
    owner = Owner.remote()
    [inner], pid = loom.get(owner.make.remote(), timeout=60)
    loom.kill(owner)
    wait_until(lambda: process_gone(pid), timeout=30, what="the owner's process to exit")

    # The owner's death reaches the reader asynchronously: within a few
    # seconds get must stop returning the value and raise instead.
    def raises_owner_died():
        try:
            loom.get(inner, timeout=30)
            return False
        except OwnerDiedError:
            return True

    wait_until(raises_owner_died, timeout=30, interval=0.5,
               what="get of the dead owner's object to raise OwnerDiedError")


# --- Ctrl-C ---------------------------------------------------------------------

BLOCKED_DRIVER = """
    import linecache
    import sys
    import threading
    import time
    import loom

    loom.init(num_cpus=1)

    @loom.remote
    def forever():
        while True:
            time.sleep(1)

    def in_blocking_get(frame):
        # The main thread's innermost Python frame is loom.get, on the line
        # that calls into the extension (which waits without the GIL).
        return (frame is not None and frame.f_code.co_name == "get" and
                frame.f_code.co_filename.endswith("worker.py") and
                "_core.get(" in linecache.getline(frame.f_code.co_filename,
                                                  frame.f_lineno))

    def announce_when_blocked():
        main = threading.main_thread().ident
        seen = 0
        while seen < 10:  # 100 ms on that line: inside the call, not before it
            seen = seen + 1 if in_blocking_get(sys._current_frames().get(main)) else 0
            time.sleep(0.01)
        print("IN GET", flush=True)

    ref = forever.remote()
    threading.Thread(target=announce_when_blocked, daemon=True).start()
    loom.get(ref)
    print("GET RETURNED", flush=True)
"""


@pytest.mark.loom_timeout(240)
@pytest.mark.parametrize("target", ["driver", "process-group"])
def test_ctrl_c_interrupts_a_blocked_get(processes, target):
    """SIGINT to the driver alone, and to its whole process group as a
    terminal's Ctrl-C sends it."""
    proc = processes.start_driver(BLOCKED_DRIVER)
    # readline returns at the line, or at EOF when the driver exits early;
    # the test's time limit bounds a driver that hangs before get.
    line = None
    while line != "IN GET\n":
        line = proc.stdout.readline()
        assert line, f"the driver exited before get:\n{proc.stderr.read()}"
    assert proc.poll() is None

    start = time.monotonic()
    if target == "driver":
        os.kill(proc.pid, signal.SIGINT)
    else:
        os.killpg(proc.pid, signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the driver did not exit within 30 s of SIGINT")
    assert time.monotonic() - start < 30
    assert proc.returncode != 0
    assert "GET RETURNED" not in out
    assert "Traceback" in err and "KeyboardInterrupt" in err, err
    # The private cluster goes away with its driver.
    wait_until(lambda: not processes.leftovers(), timeout=30,
               what="the driver's cluster processes to exit")
