"""Network hosts on one Linux machine, and a Loom cluster across them.

Each host is a network namespace with one veth link to a bridge of its own
run, on a private /24 the run picks, plus a mount namespace with private
tmpfs on /tmp (so on the Loom session root /tmp/loom) and /dev/shm: hosts
share neither addresses, ports, unix sockets nor files under /tmp. The
checkout (build/ and .venv/) stays visible on every host, even when it lies
under /tmp (CI clones to /tmp/...): it is bound back over the private /tmp.

    with Network(3) as net:                       # needs root and iproute2
        cluster = LoomCluster(net).start()        # head on host 1, 2 joins
        out = cluster.run_driver(net.hosts[2], "import loom; ...")
        net.hosts[1].cut()                        # link down; .mend() after

Everything a run creates carries its tag (pid + random) in its name, so
parallel runs do not collide; `Network.close()` (also at exit, and a
leftover of a run whose process died is swept by the next run) kills every
process inside the namespaces and deletes them and the bridge.

Used by tests/multihost (pytest) and benchmarks/multihost.py.
"""
import atexit
import ipaddress
import json
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
_PREFIX_NS = "lmh-"  # lmh-<pid hex>-<3 hex>-<i>
_PREFIX_BRIDGE = "lmb"  # lmb<pid hex><3 hex>
_PREFIX_VETH = "lmv"  # lmv<pid hex><3 hex><i>
SESSION_ROOT = "/tmp/loom"  # on each host's private /tmp
HEAD_PORT = 6379  # every host has ports of its own
TLS_DIR = "/tmp/loom-tls"  # a TLS cluster's certificates, on each host


class Unavailable(Exception):
    """Namespaces cannot be made here (not root, no iproute2, no
    permission): the reason, for a skip."""


def wait_until(predicate, timeout, what, interval=0.1):
    """Polls predicate() until it returns something truthy and returns it;
    raises TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def _sh(argv, check=True, **kwargs):
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    r = subprocess.run(argv, text=True, **kwargs)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {r.returncode}: "
                           f"{r.stderr.strip()}")
    return r


def check_available():
    """Raises Unavailable with the reason when this machine cannot make
    network and mount namespaces."""
    if os.geteuid() != 0:
        raise Unavailable("needs root (network and mount namespaces)")
    for tool in ("ip", "unshare", "nsenter", "mount"):
        if shutil.which(tool) is None:
            raise Unavailable(f"needs `{tool}` (iproute2 / util-linux: "
                              "scripts/install-deps.sh installs them)")
    probe = f"{_PREFIX_NS}probe-{os.getpid():x}-{secrets.token_hex(2)}"
    r = _sh(["ip", "netns", "add", probe], check=False)
    if r.returncode != 0:
        raise Unavailable(f"`ip netns add` failed: {r.stderr.strip()}")
    _sh(["ip", "netns", "del", probe], check=False)
    r = _sh(["unshare", "--mount", "--propagation", "private", "true"],
            check=False)
    if r.returncode != 0:
        raise Unavailable(f"`unshare --mount` failed: {r.stderr.strip()}")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _kill_netns_processes(ns, timeout=10.0):
    """SIGKILLs every process in network namespace `ns` until none is
    left (or timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        r = _sh(["ip", "netns", "pids", ns], check=False)
        pids = [int(p) for p in r.stdout.split()] if r.returncode == 0 else []
        pids = [p for p in pids if p != os.getpid()]
        if not pids or time.monotonic() > deadline:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def sweep_stale():
    """Deletes namespaces, bridges and veths left by runs whose process is
    gone (a run killed with SIGKILL cannot clean up itself)."""
    r = _sh(["ip", "netns", "list"], check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(r"lmh-(?:probe-)?([0-9a-f]+)-[0-9a-f]+(?:-\d+)?", name)
        if m and not _pid_alive(int(m.group(1), 16)):
            _kill_netns_processes(name)
            _sh(["ip", "netns", "del", name], check=False)
    r = _sh(["ip", "-o", "link", "show"], check=False)
    for line in r.stdout.splitlines():
        m = re.match(r"\d+: (lm[bv])([0-9a-f]+)[@:]", line)
        if not m:
            continue
        digits = m.group(2)
        pid_hex = digits[:-3] if m.group(1) == "lmb" else digits[:-4]
        if pid_hex and not _pid_alive(int(pid_hex, 16)):
            _sh(["ip", "link", "del", m.group(1) + digits], check=False)


def _used_networks():
    nets = []
    for argv in (["ip", "-4", "-o", "addr", "show"],
                 ["ip", "-4", "route", "show", "table", "all"]):
        out = _sh(argv, check=False).stdout
        for token in re.findall(r"\b(\d+\.\d+\.\d+\.\d+(?:/\d+)?)\b", out):
            try:
                nets.append(ipaddress.ip_network(token, strict=False))
            except ValueError:
                pass
    return nets


def pick_subnet():
    """A 10.a.b.0/24 that no address or route of this machine overlaps."""
    used = _used_networks()
    for _ in range(200):
        net = ipaddress.ip_network(
            f"10.{random.randint(64, 250)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free 10.x.y.0/24 found")


def _paths_to_keep():
    """Directories the hosts need that a private /tmp would hide: the
    checkout, the interpreter's prefix, the loom package."""
    keep = {REPO_ROOT, Path(sys.prefix).resolve()}
    try:
        import loom  # noqa: PLC0415 - optional, for where it is installed
        keep.add(Path(loom.__file__).resolve().parent.parent)
    except ImportError:
        pass
    under_tmp = sorted(p for p in keep if Path("/tmp") in p.parents)
    outer = []
    for p in under_tmp:
        if not any(o == p or o in p.parents for o in outer):
            outer.append(p)
    return outer


def _staging_dir(keep):
    """A directory to mount the new /tmp on before moving it into place; it
    is shadowed only inside the host's mount namespace, never outside."""
    for d in ("/mnt", "/media", "/srv", "/opt", "/home"):
        p = Path(d)
        if p.is_dir() and not any(p == k or p in k.parents for k in keep):
            return d
    raise Unavailable("no directory to stage the private /tmp on")


class Host:
    """One network host: a network namespace plus a mount namespace held by
    a `sleep` process; every command runs inside both through nsenter."""

    def __init__(self, net, index, ns, ip, veth):
        self.net = net
        self.index = index  # 1-based
        self.name = f"host{index}"
        self.ns = ns
        self.ip = ip
        self.veth = veth  # the bridge side, in the root namespace
        self.holder = None

    def __repr__(self):
        return f"Host({self.name}, {self.ip})"

    def _start_holder(self):
        keep = _paths_to_keep()
        stage = _staging_dir(keep)
        # A fresh tmpfs, mounted elsewhere first so that the paths to keep
        # can be bound into it, then moved over /tmp.
        q = shlex.quote
        script = [f"mount -t tmpfs -o mode=1777 tmpfs {q(stage)}"]
        for path in keep:
            inside = os.path.join(stage, os.path.relpath(path, "/tmp"))
            script += [f"mkdir -p {q(inside)}",
                       f"mount --rbind {q(str(path))} {q(inside)}"]
        script += [f"mount --move {q(stage)} /tmp",
                   "mount -t tmpfs -o mode=1777 tmpfs /dev/shm",
                   f"mkdir -p {SESSION_ROOT}",
                   "echo ready", "exec sleep infinity"]
        self.holder = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "unshare", "--mount",
             "--propagation", "private", "sh", "-ec", "\n".join(script)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        line = self.holder.stdout.readline().strip()
        if line != "ready":
            self.holder.kill()
            raise Unavailable(f"{self.name}: making its mount namespace "
                              f"failed: {self.holder.stderr.read().strip()}")

    @property
    def pid(self):
        return self.holder.pid

    def wrap(self, argv, cwd="/"):
        """argv run inside this host (network and mount namespaces)."""
        return ["nsenter", f"--target={self.pid}", "--mount", "--net",
                f"--wd={cwd}", "--"] + [str(a) for a in argv]

    def env(self, extra=None):
        """The environment of commands on this host: this process's, less
        Loom's, plus the cluster's (session root, token) and `extra` (where
        a value of None unsets the variable)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("LOOM_")}
        env["LOOM_SESSION_ROOT"] = SESSION_ROOT
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.net.env)
        for k, v in (extra or {}).items():
            if v is None:
                env.pop(k, None)  # None: not set at all
            else:
                env[k] = v
        return env

    def run(self, argv, timeout=60, env=None, check=False, cwd="/", **kw):
        """Runs argv here to the end; a CompletedProcess with text output."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        r = subprocess.run(self.wrap(argv, cwd), env=self.env(env),
                           timeout=timeout, text=True, **kw)
        if check and r.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(map(str, argv))} "
                               f"exited with {r.returncode}:\n{r.stdout}\n"
                               f"{r.stderr}")
        return r

    def popen(self, argv, env=None, cwd="/", **kw):
        """Starts argv here (a session of its own); the caller waits."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(self.wrap(argv, cwd), env=self.env(env),
                                text=True, start_new_session=True, **kw)

    def path(self, path):
        """Path `path` as this host sees it (through its holder's root)."""
        return Path(f"/proc/{self.pid}/root{path}")

    def pids(self):
        r = _sh(["ip", "netns", "pids", self.ns], check=False)
        return [int(p) for p in r.stdout.split()]

    def cut(self):
        """Takes this host off the network (its link to the bridge down)."""
        _sh(["ip", "link", "set", self.veth, "down"])

    def mend(self):
        _sh(["ip", "link", "set", self.veth, "up"])

    def kill_all(self):
        _kill_netns_processes(self.ns)


class Network:
    """n hosts on a bridge. Raises Unavailable when namespaces cannot be
    made here."""

    _live = []

    def __init__(self, n=3):
        check_available()
        sweep_stale()
        _exit_on_sigterm()
        self.tag = f"{os.getpid():x}{secrets.token_hex(2)[:3]}"
        self.subnet = pick_subnet()
        self.bridge = f"{_PREFIX_BRIDGE}{self.tag}"
        self.env = {}  # added to every host command's environment
        self.hosts = []
        Network._live.append(self)
        try:
            self._create(n)
        except BaseException:
            self.close()
            raise

    def _create(self, n):
        _sh(["ip", "link", "add", self.bridge, "type", "bridge"])
        _sh(["ip", "link", "set", self.bridge, "up"])
        ips = list(self.subnet.hosts())
        for i in range(1, n + 1):
            ns = f"{_PREFIX_NS}{os.getpid():x}-{self.tag[-3:]}-{i}"
            veth = f"{_PREFIX_VETH}{self.tag}{i}"
            host = Host(self, i, ns, str(ips[i - 1]), veth)
            self.hosts.append(host)
            _sh(["ip", "netns", "add", ns])
            _sh(["ip", "link", "add", veth, "type", "veth", "peer", "name",
                 f"{veth}p"])
            _sh(["ip", "link", "set", f"{veth}p", "netns", ns])
            _sh(["ip", "link", "set", veth, "master", self.bridge])
            _sh(["ip", "link", "set", veth, "up"])
            _sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            _sh(["ip", "-n", ns, "link", "set", f"{veth}p", "name", "eth0"])
            _sh(["ip", "-n", ns, "addr", "add",
                 f"{host.ip}/{self.subnet.prefixlen}", "dev", "eth0"])
            _sh(["ip", "-n", ns, "link", "set", "eth0", "up"])
            host._start_holder()

    def close(self):
        """Kills every process on the hosts, deletes the namespaces, links
        and the bridge. Idempotent."""
        for host in self.hosts:
            host.kill_all()
            if host.holder is not None:
                host.holder.kill()
                host.holder.communicate()
            _sh(["ip", "netns", "del", host.ns], check=False)
            _sh(["ip", "link", "del", host.veth], check=False)
        _sh(["ip", "link", "del", self.bridge], check=False)
        self.hosts = []
        if self in Network._live:
            Network._live.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@atexit.register
def _close_all():
    for net in list(Network._live):
        net.close()


def _exit_on_sigterm():
    """SIGTERM (a timeout's kill) unwinds like an exception, so finalizers
    and the atexit hook above tear the hosts down."""
    import threading  # noqa: PLC0415
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + 15))


# --- Loom on the hosts ------------------------------------------------------


def loom_cli():
    """The `loom` command: beside this interpreter, else build/bin."""
    for candidate in (Path(sys.executable).parent / "loom",
                      REPO_ROOT / "build" / "bin" / "loom"):
        if os.access(candidate, os.X_OK):
            return str(candidate)
    raise RuntimeError("no `loom` command beside python or in build/bin: "
                       "run `make install-python` first")


def test_binary(name):
    """A test program of the build (loom-test-driver, loom-probe)."""
    path = REPO_ROOT / "build" / "bin" / name
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"no {path}: run `make build` first")
    return str(path)


def test_driver_binary():
    """The C++ driver the multihost tests run (tests/cluster/test_driver.cc)."""
    return test_binary("loom-test-driver")


class LoomCluster:
    """Loom started with the real CLI: `loom start --head` on host 1,
    `loom start --address` on the others. Each node also offers a custom
    resource named after its host ("host1": 100, ...) so that work can be
    sent to a host by name, from Python and C++ alike."""

    def __init__(self, net, num_cpus=2, node_timeout_ms=None,
                 object_store_memory=512 << 20, tls=False):
        self.net = net
        self.tls = tls  # `loom tls init` on host 1, copied to every host
        self.num_cpus = num_cpus
        self.node_timeout_ms = node_timeout_ms
        self.object_store_memory = object_store_memory
        self.cli = loom_cli()
        self.head = net.hosts[0]
        self.address = f"{self.head.ip}:{HEAD_PORT}"
        self.started = []

    def _start_args(self, host):
        args = [self.cli, "start", "--node-ip-address", host.ip,
                "--num-cpus", self.num_cpus,
                "--object-store-memory", self.object_store_memory,
                "--resources", json.dumps({host.name: 100})]
        if self.tls:
            args += ["--tls-dir", TLS_DIR]
        if host is self.head:
            args += ["--head", "--port", HEAD_PORT]
            if self.node_timeout_ms is not None:
                args += ["--node-timeout-ms", self.node_timeout_ms]
        else:
            args += ["--address", self.address]
        return args

    def start_node(self, host):
        # A file, not a pipe: the daemons inherit the command's output.
        log = host.path(f"/tmp/loom-start-{uuid.uuid4().hex[:6]}.log")
        with open(log, "w") as out:
            r = host.run(self._start_args(host), timeout=60, stdout=out,
                         stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise RuntimeError(f"{host.name}: loom start exited with "
                               f"{r.returncode}:\n{log.read_text()}")
        self.started.append(host)
        if host is self.head:
            self._read_token()
        return log.read_text()

    def _read_token(self):
        """The cluster token, passed to every later command through
        $LOOM_AUTH_TOKEN (the one place it is set)."""
        token = self.head.path(self.session_dir(self.head) + "/auth_token")
        if not token.exists():
            raise RuntimeError(f"the head wrote no cluster token ({token})")
        self.net.env["LOOM_AUTH_TOKEN"] = token.read_text().strip()

    def make_certificates(self):
        """A CA and each host's own certificate (naming only its address),
        made on host 1 with `loom tls init` and copied from its nodes/IP
        directory into that host's TLS_DIR; every command on the hosts then
        takes $LOOM_TLS_DIR."""
        ips = []
        for h in self.net.hosts:
            ips += ["--ip", h.ip]
        made_dir = TLS_DIR + ".made"
        self.head.run([self.cli, "tls", "init", made_dir, *ips], check=True)
        made = self.head.path(made_dir)
        for host in self.net.hosts:
            to = host.path(TLS_DIR)
            to.mkdir(mode=0o700, parents=True, exist_ok=True)
            for name in ("ca.pem", "node.pem", "node.key"):
                (to / name).write_bytes(
                    (made / "nodes" / host.ip / name).read_bytes())
                (to / name).chmod(0o600)
        self.net.env["LOOM_TLS_DIR"] = TLS_DIR

    def start(self):
        if self.tls:
            self.make_certificates()
        for host in self.net.hosts:
            self.start_node(host)
        self.wait_for_nodes(alive=len(self.net.hosts))
        return self

    def stop(self):
        for host in reversed(self.started):
            host.run([self.cli, "stop"], timeout=60)
        self.started = []
        self.net.env.pop("LOOM_TLS_DIR", None)

    # --- Inspecting ---------------------------------------------------------

    def session_dir(self, host):
        """The host's latest session directory (as the host sees it)."""
        latest = host.path(f"{SESSION_ROOT}/session_latest")
        if latest.is_symlink():
            return os.path.join(SESSION_ROOT, os.readlink(latest))
        return f"{SESSION_ROOT}/session_latest"

    def cli_run(self, *args, host=None, timeout=30, env=None):
        return (host or self.head).run([self.cli, *args], timeout=timeout,
                                       env=env)

    def nodes(self, host=None):
        """`loom list nodes` on host 1 (or `host`): [{node_id, ip, port,
        state, pid, resources}]."""
        r = self.cli_run("list", "nodes", "--address", self.address,
                         host=host)
        if r.returncode != 0:
            raise RuntimeError(f"loom list nodes: {r.stderr.strip()}")
        out = []
        for line in r.stdout.splitlines()[1:]:
            parts = line.split(None, 4)
            if len(parts) < 4:
                continue
            ip, port = parts[1].rsplit(":", 1)
            out.append({"node_id": parts[0], "ip": ip, "port": int(port),
                        "state": parts[2], "pid": int(parts[3]),
                        "resources": parts[4] if len(parts) > 4 else ""})
        return out

    def node_of(self, host, state="ALIVE"):
        for n in self.nodes():
            if n["ip"] == host.ip and n["state"] == state:
                return n
        return None

    def wait_for_nodes(self, alive, dead=0, timeout=30):
        def counts():
            try:
                nodes = self.nodes()
            except (RuntimeError, subprocess.TimeoutExpired):
                return None
            a = sum(n["state"] == "ALIVE" for n in nodes)
            d = sum(n["state"] == "DEAD" for n in nodes)
            return nodes if (a, d) == (alive, dead) else None
        return wait_until(counts, timeout,
                          f"{alive} nodes alive and {dead} dead")

    def metrics(self, host, daemon="raylet"):
        """/metrics of the host's raylet (or "gcs"), read over the network
        with no token, parsed: {name{labels}: value}."""
        ready = host.path(self.session_dir(host) + f"/{daemon}.ready")
        metrics_port = ready.read_text().split()[1]
        code = ("import sys, urllib.request; sys.stdout.write(urllib.request"
                f".urlopen('http://{host.ip}:{metrics_port}/metrics', "
                "timeout=5).read().decode())")
        r = host.run([sys.executable, "-c", code], timeout=30, check=True)
        return parse_metrics(r.stdout)

    def raylet_log(self, host):
        logs = host.path(self.session_dir(host) + "/logs")
        return "".join(p.read_text(errors="replace")
                       for p in sorted(logs.glob("raylet*")))

    # --- Drivers --------------------------------------------------------------

    def _write_driver(self, host, source):
        script = f"/tmp/drivers/driver_{uuid.uuid4().hex[:8]}.py"
        path = host.path(script)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return script

    def start_driver(self, host, source, env=None, **popen_args):
        """Starts a Python driver (`source`, dedented) on `host`; it joins
        with loom.init(address=cluster.address) or loom.init("auto") (which
        finds the host's own session directory). Its stdout and stderr are
        text pipes."""
        script = self._write_driver(host, source)
        extra = {"PYTHONPATH": str(Path(__file__).resolve().parent)}
        extra.update(env or {})
        return host.popen([sys.executable, script], env=extra, cwd="/tmp",
                          **popen_args)

    def run_driver(self, host, source, timeout=120, env=None):
        """Runs a Python driver to the end: (returncode, stdout, stderr)."""
        proc = self.start_driver(host, source, env)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise TimeoutError(f"driver ran past {timeout} s\nstdout:\n{out}\n"
                               f"stderr:\n{err}") from None
        return proc.returncode, out, err


def parse_metrics(text):
    """Prometheus text format to {'name{labels}': float}."""
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            values[key] = float(value)
        except ValueError:
            pass
    return values


def metric(values, name):
    """The sum of every sample of metric `name` (any labels)."""
    return sum(v for k, v in values.items()
               if k == name or k.startswith(name + "{"))
