"""A cluster of several nodes on one machine, for tests.

Like ``ray.cluster_utils.Cluster``: each node is a real raylet (the head
also runs the GCS), started the way ``loom start`` starts them, under a
session root of the cluster's own that shutdown() removes.

    from loom.cluster_utils import Cluster

    with Cluster(head_node_args={"num_cpus": 1}) as cluster:
        node = cluster.add_node(num_cpus=2, resources={"disk": 1})
        cluster.wait_for_nodes()
        cluster.connect()          # loom.init(address=cluster.address, ...)
        ...
        cluster.remove_node(node)  # its raylet and workers stop

The daemons are tied to this process: they exit with it, even after
kill -9. A driver in this process should join with cluster.connect(), which
attaches it to the head's raylet; plain ``loom.init(address=cluster.address)``
works too but may attach to any node of the cluster (all are local), and a
driver whose node is removed loses its connection.
"""

import atexit
import os
import shutil
import signal
import tempfile
import threading
import time
import weakref

from loom import _core
from loom._private import worker as _worker

__all__ = ["Cluster", "ClusterNode"]

_NODE_ARGS = ("num_cpus", "num_gpus", "resources", "labels",
              "object_store_memory", "memory", "memory_usage_threshold",
              "memory_monitor_limit_bytes")
_HEAD_ARGS = _NODE_ARGS + ("node_timeout_ms", "heartbeat_ms")


class ClusterNode:
    """One node of a Cluster. node_id is the head's id for it (hex) once it
    has registered; address is its raylet's HOST:PORT."""

    def __init__(self, cluster, is_head, args):
        self.is_head = is_head
        self.args = dict(args)
        self.node_id = None
        self.address = None
        self.session_dir = None
        self.removed = False
        self._cluster = cluster
        self._daemons = None
        self._error = None
        self._thread = None

    @property
    def pids(self):
        """The daemons' pids: the GCS (head only) and the raylet."""
        return list(self._daemons.pids) if self._daemons else []

    def _start(self):
        a = self.args
        try:
            self._daemons = _core.start_node(
                self._cluster.session_root,
                "" if self.is_head else self._cluster.address,
                -1 if a.get("num_cpus") is None else int(a["num_cpus"]),
                -1 if a.get("num_gpus") is None else int(a["num_gpus"]),
                {str(k): float(v) for k, v in (a.get("resources") or {}).items()},
                {str(k): str(v) for k, v in (a.get("labels") or {}).items()},
                int(a.get("object_store_memory") or 0),
                int(a.get("memory") or 0),
                int(a.get("node_timeout_ms") or 5000),
                int(a.get("heartbeat_ms") or 0),
                -1.0 if a.get("memory_usage_threshold") is None
                else float(a["memory_usage_threshold"]),
                int(a.get("memory_monitor_limit_bytes") or 0))
        except RuntimeError as e:
            self._error = str(e)
            return
        self.address = self._daemons.raylet_address
        self.session_dir = os.path.realpath(self._daemons.session_dir)

    def _stop(self):
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._daemons is not None:
            _core.stop_node(self._daemons)
        if self.session_dir:
            _end_processes_mentioning(self.session_dir)

    def __repr__(self):
        role = "head" if self.is_head else "node"
        return (f"ClusterNode({role}, id={self.node_id}, "
                f"address={self.address}, removed={self.removed})")


class Cluster:
    """Nodes on this machine joined into one cluster.

    Cluster(initialize_head=True, head_node_args={...}): head_node_args takes
    num_cpus, num_gpus, resources, labels, object_store_memory, memory,
    memory_usage_threshold and memory_monitor_limit_bytes (the raylet's
    memory monitor: docs/operations.md), node_timeout_ms (how long the head waits before declaring a silent node
    dead; 5000) and heartbeat_ms. With initialize_head=False, add_node()'s
    first call starts the head.
    """

    def __init__(self, initialize_head=True, head_node_args=None):
        # Short: unix socket paths under it are limited in length.
        self.session_root = tempfile.mkdtemp(prefix="loom-cl-", dir="/tmp")
        self.head_node = None
        self._nodes = []
        self._lock = threading.Lock()
        self._shut = False
        _live.add(self)
        bins = _worker._bin_dir()
        if bins and "LOOM_BIN_DIR" not in os.environ:
            os.environ["LOOM_BIN_DIR"] = bins
        if initialize_head:
            try:
                self.add_node(**(head_node_args or {}))
            except BaseException:
                self.shutdown()
                raise

    # --- Nodes ----------------------------------------------------------

    @property
    def address(self):
        """The head's HOST:PORT, for loom.init(address=...)."""
        if self.head_node is None or self.head_node._daemons is None:
            raise RuntimeError("the cluster has no head yet: call add_node()")
        return self.head_node._daemons.gcs_address

    def list_all_nodes(self):
        """Every node added and not removed, the head first."""
        return [n for n in self._nodes if not n.removed]

    def add_node(self, wait=True, **node_args):
        """Starts a node and returns its ClusterNode. The first node is the
        head (it takes head_node_args' keys too). With wait=True (the
        default) returns once the node's raylet serves and the head lists
        it, raising RuntimeError if it cannot start; with wait=False starts
        it in the background: wait_for_nodes() then reports how it went."""
        if self._shut:
            raise RuntimeError("the cluster is shut down")
        is_head = self.head_node is None
        allowed = _HEAD_ARGS if is_head else _NODE_ARGS
        unknown = sorted(set(node_args) - set(allowed))
        if unknown:
            raise TypeError(f"add_node() does not support: {', '.join(unknown)}"
                            + ("" if is_head else
                               " (node_timeout_ms and heartbeat_ms are the "
                               "head's: pass them in head_node_args)"))
        if not is_head and self.head_node._daemons is None:
            raise RuntimeError("the head did not start")
        if not is_head:
            node_args.setdefault("heartbeat_ms",
                                 self.head_node.args.get("heartbeat_ms"))
        node = ClusterNode(self, is_head, node_args)
        with self._lock:
            self._nodes.append(node)
        if is_head:
            self.head_node = node
        if is_head or wait:
            node._start()
            if node._error:
                node.removed = True
                if is_head:
                    self.head_node = None
                raise RuntimeError(f"the {'head' if is_head else 'node'} "
                                   f"could not start: {node._error}")
            self._point_latest_at_head()
            self._wait_registered([node], timeout=30)
        else:
            node._thread = threading.Thread(target=node._start, daemon=True,
                                            name="loom-cluster-add-node")
            node._thread.start()
        return node

    def remove_node(self, node, allow_graceful=True):
        """Stops a node's raylet and its workers; the head then declares it
        dead (at once, or within its node timeout). The head itself goes
        only with shutdown()."""
        if node.is_head:
            raise ValueError("the head is removed by shutdown(), not "
                             "remove_node()")
        if node.removed:
            return
        node.removed = True
        if not allow_graceful and node._daemons is not None:
            for pid in node._daemons.pids:
                _signal(pid, signal.SIGKILL)
        node._stop()

    def wait_for_nodes(self, timeout=30):
        """Waits until the head lists every added node (not removed) as
        alive. Raises TimeoutError after `timeout` seconds, or as soon as a
        node started with wait=False has failed to start, naming the nodes
        and why."""
        deadline = time.monotonic() + timeout
        while True:
            nodes = self.list_all_nodes()
            failed = [n for n in nodes if n._error]
            pending = [n for n in nodes if n._thread and n._thread.is_alive()]
            missing = []
            if not pending and not failed:
                alive = self._alive_session_dirs()
                for n in nodes:
                    if n.session_dir not in alive:
                        missing.append(n)
                    elif n.node_id is None:
                        n.node_id = alive[n.session_dir]
                if not missing:
                    self._point_latest_at_head()
                    return
            if failed or time.monotonic() > deadline:
                lines = [f"  {n!r} could not start: {n._error}" for n in failed]
                lines += [f"  {n!r} is still starting" for n in pending]
                lines += [f"  {n!r} is not alive at the head" for n in missing]
                raise TimeoutError(
                    f"wait_for_nodes: not every node is up "
                    f"({'a node failed' if failed else f'after {timeout} s'}):\n"
                    + "\n".join(lines))
            time.sleep(0.05)

    def connect(self, **init_args):
        """loom.init(address=self.address) from this process, attached to
        the head's raylet."""
        self._point_latest_at_head()
        return _worker.init(address=self.address,
                            _session_root=self.session_root, **init_args)

    # --- Shutdown -------------------------------------------------------

    def shutdown(self):
        """Disconnects a driver of this process joined to this cluster,
        stops every node (the head last), and removes the session root."""
        if self._shut:
            return
        self._shut = True
        _live.discard(self)
        try:
            if _core.is_initialized() and os.path.realpath(
                    _core.session_dir() or "/").startswith(
                        os.path.realpath(self.session_root) + os.sep):
                _worker.shutdown()
        except Exception:  # noqa: BLE001 - the nodes stop regardless
            pass
        for node in reversed(self._nodes):
            node.removed = True
            node._stop()
        _end_processes_mentioning(self.session_root)
        shutil.rmtree(self.session_root, ignore_errors=True)
        self.head_node = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def __del__(self):
        try:
            self.shutdown()
        except Exception:  # noqa: BLE001 - at interpreter teardown
            pass

    # --- Helpers ----------------------------------------------------------

    def _alive_session_dirs(self):
        """{session_dir: node_id} of the nodes the head lists alive."""
        try:
            table = _core.head_nodes(self.address, 2000)
        except RuntimeError:
            return {}
        return {os.path.realpath(n["SessionDir"]): n["NodeID"]
                for n in table if n["Alive"] and n["SessionDir"]}

    def _wait_registered(self, nodes, timeout):
        deadline = time.monotonic() + timeout
        while True:
            alive = self._alive_session_dirs()
            for n in nodes:
                n.node_id = alive.get(n.session_dir, n.node_id)
            if all(n.node_id for n in nodes):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the head did not list {nodes!r} alive "
                                   f"within {timeout} s")
            time.sleep(0.05)

    def _point_latest_at_head(self):
        # A driver joining with this root (connect()) attaches to the
        # raylet of its latest session: the head's, not the last added.
        if self.head_node is None or not self.head_node.session_dir:
            return
        link = os.path.join(self.session_root, "session_latest")
        tmp = f"{link}.{os.getpid()}.tmp"
        try:
            os.symlink(os.path.basename(self.head_node.session_dir), tmp)
            os.replace(tmp, link)
        except OSError:
            pass


_live = weakref.WeakSet()


@atexit.register
def _shutdown_all():
    for cluster in list(_live):
        cluster.shutdown()


def _signal(pid, sig):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _processes_mentioning(text):
    """Live pids (not this one) whose command line contains text."""
    text = text.rstrip("/").encode()
    needles = (text + b"\0", text + b"/")  # not session_1 for session_10
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            if not any(n in cmdline for n in needles):
                continue
            with open(f"/proc/{entry}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except OSError:
            continue
        pids.append(int(entry))
    return pids


def _end_processes_mentioning(text, grace_s=5.0):
    """Waits for the processes of a stopped node (its workers exit with
    their raylet) and ends any that stay: SIGTERM, then SIGKILL."""
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        pids = _processes_mentioning(text)
        if not pids:
            return
        if sig is not None:
            for pid in pids:
                _signal(pid, sig)
        deadline = time.monotonic() + grace_s
        while _processes_mentioning(text) and time.monotonic() < deadline:
            time.sleep(0.05)
