# tests/python/conftest.py
#
# Fixtures and helpers for the pytest suite of the Python client.
#
#   def test_square(loom_cluster):          # the shared 4-CPU cluster
#       assert loom.get(square.remote(3)) == 9
#
#   def test_gpus(new_cluster):             # a cluster of this test's own
#       new_cluster(num_cpus=2, num_gpus=2)
#
# Run from the repository root with `python -m pytest tests/python`. Every
# test has a time limit (120 s, or @pytest.mark.loom_timeout(seconds)):
# past it SIGALRM raises TestTimedOut in the test, and 90 s later a
# faulthandler watchdog dumps every thread's stack and ends the process, so a
# deadlock fails the run instead of hanging it.
#
# Tasks defined in the test modules import this module in the workers (it is
# on the driver's sys.path, which the workers share), so it must stay free of
# side effects at import.

import faulthandler
import glob
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import textwrap
import re
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

import loom

DEFAULT_TIMEOUT_S = 120
REPO_ROOT = Path(__file__).resolve().parents[2]


# --- Per-test time limit ----------------------------------------------------


class TestTimedOut(Exception):
    """Raised in the test body when it runs past its time limit."""

    __test__ = False  # not a test class, despite the name


def _time_limit(item):
    marker = item.get_closest_marker("loom_timeout")
    return int(marker.args[0]) if marker else DEFAULT_TIMEOUT_S


_watchdog_file = None


def _real_stderr(config):
    """A file on the stderr pytest started with, which its output capture
    does not swallow (falls back to sys.stderr)."""
    global _watchdog_file
    if _watchdog_file is None:
        capture = config.pluginmanager.getplugin("capturemanager")
        err = getattr(getattr(capture, "_global_capturing", None), "err", None)
        saved = getattr(err, "targetfd_save", None)
        _watchdog_file = os.fdopen(os.dup(saved), "w") if saved is not None else sys.stderr
    return _watchdog_file


_session_root = {"path": None}


def pytest_configure(config):
    # Private clusters (loom.init() with no address) make their session
    # directories under $LOOM_SESSION_ROOT: the suite's own, removed at the
    # end, not /tmp/loom.
    if not os.environ.get("LOOM_SESSION_ROOT"):
        _session_root["path"] = tempfile.mkdtemp(prefix="loom-pytest-")
        os.environ["LOOM_SESSION_ROOT"] = _session_root["path"]


def pytest_unconfigure(config):
    if _session_root["path"]:
        shutil.rmtree(_session_root["path"], ignore_errors=True)
        del os.environ["LOOM_SESSION_ROOT"]
        _session_root["path"] = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    # Backstop for setup, call and teardown together: a process stuck where
    # no Python code runs (a deadlock inside the extension) is ended with
    # every thread's stack on stderr.
    faulthandler.dump_traceback_later(_time_limit(item) + 90, exit=True,
                                      file=_real_stderr(item.config))
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    limit = _time_limit(item)

    def on_alarm(signum, frame):
        raise TestTimedOut(f"{item.nodeid} ran past its {limit} s limit")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --- Clusters ---------------------------------------------------------------

_shared = {"up": False}


def _stop_any_cluster():
    if loom.is_initialized():
        loom.shutdown()
    _shared["up"] = False


@pytest.fixture
def loom_cluster():
    """The shared cluster: loom.init(num_cpus=4), started on first use and
    kept for the rest of the module (a test that needs a cluster of its own
    stops it; the next user starts it again)."""
    if not (_shared["up"] and loom.is_initialized()):
        _stop_any_cluster()
        loom.init(num_cpus=4)
        _shared["up"] = True
    yield


@pytest.fixture(scope="module", autouse=True)
def _cluster_per_module():
    # Each file starts from a fresh cluster, so that the workers one file
    # kills do not bear on the next.
    yield
    _stop_any_cluster()


@pytest.fixture
def new_cluster():
    """Factory for a cluster of this test's own: new_cluster(**init_kwargs)
    stops any running cluster and calls loom.init(**init_kwargs). Stopped at
    the end of the test."""
    _stop_any_cluster()

    def start(**kwargs):
        _stop_any_cluster()
        loom.init(**kwargs)

    yield start
    _stop_any_cluster()


@pytest.fixture
def no_cluster():
    """No cluster in this process (for tests that run drivers of their own)."""
    _stop_any_cluster()
    yield


# --- Waiting ----------------------------------------------------------------


def two_node_cluster(head_cpus):
    """A cluster of this module's own: a head with head_cpus CPUs and a
    1-CPU node offering the custom resource "other". Returns (Cluster, that
    node); the caller connects and shuts it down."""
    from loom.cluster_utils import Cluster
    if loom.is_initialized():
        loom.shutdown()
    cluster = Cluster(head_node_args={"num_cpus": head_cpus})
    other = cluster.add_node(num_cpus=1, resources={"other": 1})
    cluster.wait_for_nodes(timeout=30)
    return cluster, other


# A driver's first half: serves `hello` (answering `answer`) at /hello and
# finds a healthy proxy (`proxy`: node_ip, port); `then` is the rest.
_SERVE_HELLO = """
import os, ssl, time, urllib.error, urllib.request
import loom
from loom import serve
loom.init(address="auto")
serve.start(http_options={"port": 0})

@serve.deployment(ray_actor_options={"num_cpus": 0})
def hello(request):
    return ANSWER

serve.run(hello.bind(), name="hello", route_prefix="/hello")
deadline = time.time() + 60
while True:
    healthy = [p for p in serve.status().proxies.values()
               if p["state"] == "HEALTHY"]
    if healthy or time.time() > deadline:
        break
    time.sleep(0.2)
assert healthy, serve.status().proxies
proxy = healthy[0]
"""


def serve_hello_driver(answer, then):
    return _SERVE_HELLO.replace("ANSWER", repr(answer)) + then


def set_env(monkeypatch, name, value):
    """$name is value for this test, or unset for None (the clusters it
    starts inherit it)."""
    if value is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, value)


def wait_until(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Polls predicate() until it is truthy and returns its value; fails the
    test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def wait_for_file(path, timeout=120.0):
    """For use inside tasks: blocks until path exists. Returns True, or False
    after timeout seconds (so that a forgotten gate never holds a worker for
    good)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def thread_states(pid):
    """The state letter (R, S, T, Z, ...) of each live thread of process
    pid; [] when it is gone."""
    states = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return states
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        except OSError:
            pass  # that thread is gone
    return states


def process_gone(pid):
    """True once process pid has exited: every thread of it gone or a zombie
    (a zombie counts as exited). The main thread turns zombie before the
    others finish exiting, and the last one out closes the process's files:
    until then its pipes and sockets are still open."""
    return all(state == "Z" for state in thread_states(pid))


def process_name(pid):
    """Its name (/proc/PID/comm), or "" for one gone or a zombie (an earlier
    test's process not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return ""
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def child_pids(pid):
    """Pids of the processes whose parent is pid."""
    kids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.split("/")[2]))
    return kids


def python_fork_servers(raylet_pid):
    """Pids of the raylet's Python fork servers (its children running
    executor.zygote_main)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if ppid == raylet_pid and b"zygote_main" in cmdline:
            pids.append(int(entry))
    return pids


def touch(path):
    Path(path).touch()


def rss_bytes():
    """This process's resident set size, from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


# --- Drivers and nodes in processes of their own -----------------------------


def _processes_with_marker(marker):
    """Pids of live processes whose environment holds LOOM_TEST_MARKER=marker."""
    needle = f"LOOM_TEST_MARKER={marker}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0") and not process_gone(int(entry)):
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


class Processes:
    """Starts processes that carry a marker in their environment, so that
    everything they start (daemons of a private cluster, workers) can be
    found again and ended by pid."""

    def __init__(self, tmp_dir):
        self.marker = uuid.uuid4().hex
        self.tmp_dir = Path(tmp_dir)
        # Short: session roots are limited to 60 characters.
        self.session_root = tempfile.mkdtemp(prefix="lt-", dir="/tmp")
        self._popens = []

    def env(self):
        env = dict(os.environ)
        package_parent = str(Path(loom.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(
            [package_parent, str(Path(__file__).parent)]
            + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        )
        env["LOOM_TEST_MARKER"] = self.marker
        env["LOOM_SESSION_ROOT"] = self.session_root
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start_driver(self, source):
        """Runs `source` (dedented) as a driver script; returns the Popen,
        with stdout and stderr as text pipes. The driver leads a process
        group of its own."""
        script = self.tmp_dir / f"driver_{uuid.uuid4().hex[:8]}.py"
        script.write_text(textwrap.dedent(source))
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            env=self.env(),
            cwd=str(self.tmp_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self._popens.append(proc)
        return proc

    def run_driver(self, source, timeout=120):
        """Runs a driver to the end; returns (returncode, stdout, stderr)."""
        proc = self.start_driver(source)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"driver ran past {timeout} s\nstdout:\n{out}\nstderr:\n{err}")
        return proc.returncode, out, err

    def leftovers(self):
        return _processes_with_marker(self.marker)

    def cleanup(self):
        for proc in self._popens:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.leftovers()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while self.leftovers() and time.monotonic() < deadline:
                time.sleep(0.1)
        shutil.rmtree(self.session_root, ignore_errors=True)


@pytest.fixture
def processes(tmp_path, no_cluster):
    procs = Processes(tmp_path)
    yield procs
    procs.cleanup()


def loom_cli():
    """The `loom` command: beside this interpreter (a virtual environment
    the package is installed in), else on PATH, else the one the CMake build
    put in build/bin."""
    beside = Path(sys.executable).parent / "loom"
    candidates = [str(beside) if beside.exists() else None, shutil.which("loom"),
                  str(REPO_ROOT / "build" / "bin" / "loom")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("no `loom` command beside python, on PATH or in build/bin: build it first")


@pytest.fixture
def head_node(processes):
    """A cluster started with `loom start --head --num-cpus 3` (on
    127.0.0.1: tests stay on loopback) in a session
    root of its own; drivers started through `processes` join it with
    address="auto". Stopped with `loom stop` at the end."""
    cli = loom_cli()
    root = processes.session_root
    log = processes.tmp_dir / "loom-start.log"
    with open(log, "w") as out:  # a file, not a pipe: the daemons inherit it
        start = subprocess.run(
            [cli, "start", "--head", "--num-cpus", "3", "--node-ip-address",
             "127.0.0.1", "--session-root", root],
            env=processes.env(), timeout=120, stdout=out, stderr=subprocess.STDOUT,
        )
    if start.returncode != 0:
        pytest.fail(f"`{cli} start --head` exited with {start.returncode}:\n"
                    f"{log.read_text()}")
    try:
        yield processes
    finally:
        subprocess.run(
            [cli, "stop", "--session-root", root],
            env=processes.env(), check=False, timeout=120,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )


# --- Redis ------------------------------------------------------------------


def _free_port_below_ephemeral():
    """A free loopback port in [20000, 32000): below the kernel's ephemeral
    range, so no outgoing connection takes it while a server restarts."""
    for _ in range(1000):
        port = random.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    pytest.fail("no free port")


def _redis_pong(port, timeout=1.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(64).startswith(b"+PONG")  # not -LOADING
    except OSError:
        return False


class RedisServer:
    """A redis-server of a test's own on a free loopback port, in `directory`.
    persistent=True: an append-only file fsynced at every write, so that
    kill() (SIGKILL) then restart() keeps every write it acknowledged."""

    def __init__(self, directory, persistent=False):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.persistent = persistent
        self.port = _free_port_below_ephemeral()
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        binary = os.environ.get("LOOM_REDIS_SERVER") or shutil.which("redis-server")
        if not binary:
            pytest.fail("redis-server not found: scripts/install-deps.sh installs it")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--daemonize", "no", "--save", "",
                "--logfile", "", "--loglevel", "warning",
                "--appendonly", "yes" if self.persistent else "no"]
        if self.persistent:
            args += ["--appendfsync", "always"]
        log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 10
        while not _redis_pong(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"redis-server on port {self.port} did not start:\n"
                            f"{(self.dir / 'redis.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.01)

    def kill(self):
        """SIGKILL, as a crash; returns once it is reaped."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self):
        """Starts it again on the same port and directory."""
        self.kill()
        self.start()


@pytest.fixture
def redis_server(tmp_path):
    """Yields "redis://127.0.0.1:PORT": a redis-server of this test's own
    (nothing kept on disk), killed at the end of the test."""
    server = RedisServer(tmp_path / "redis")
    try:
        yield server.url
    finally:
        server.kill()


@pytest.fixture
def persistent_redis(tmp_path):
    """A RedisServer (.url, .kill(), .restart()) that keeps its data across
    kill() and restart(); killed at the end of the test."""
    server = RedisServer(tmp_path / "redis", persistent=True)
    try:
        yield server
    finally:
        server.kill()


def has_gpu():
    return os.path.exists("/dev/nvidia0")


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def driver_output(monkeypatch):
    """Stands in for this driver's sys.stdout and sys.stderr from now on
    (where it prints its workers' lines, from a thread of its own); returns
    a function that gives (stdout, stderr) as printed since, colour codes
    removed. Not capfd: readouterr() empties its file after reading it, so
    a line another thread writes in between is lost, and a test that polls
    it loses lines now and then."""
    lock = threading.Lock()
    parts = {"stdout": [], "stderr": []}

    class Collector:
        def __init__(self, name):
            self._parts = parts[name]

        def write(self, text):
            with lock:
                self._parts.append(text)
            return len(text)

        def flush(self):
            pass

    for name in parts:
        monkeypatch.setattr(sys, name, Collector(name))

    def read():
        with lock:
            return tuple(ANSI_ESCAPE.sub("", "".join(parts[n]))
                         for n in ("stdout", "stderr"))

    return read


# Prometheus text from a /metrics endpoint, and one sample's value.
def scrape(target):
    with urllib.request.urlopen(f"http://{target}/metrics", timeout=10) as r:
        assert r.status == 200
        return r.read().decode()


def sample(text, metric, **labels):
    """The value of the sample `metric{labels...}` (labels in any order, others
    allowed), or None."""
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != metric:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(found.get(k) == str(v) for k, v in labels.items()):
            return float(m.group(4))
    return None
