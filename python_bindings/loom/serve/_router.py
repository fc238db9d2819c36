"""This process's side of loom.serve's routing table: one daemon thread
long-polls the controller (`listen`) and loads each new table into the C++
router (and the ingress's routes, in a proxy), sending along what the
router saw (load, answers, latency) for autoscaling and `serve status`."""
import os
import threading
import uuid

import loom
from loom import _core

_lock = threading.Lock()
_state = {"thread": None, "ingress": False, "version": -1, "known": set(),
          "ready": None}
_IDLE_WAIT_S = 5.0
_BUSY_WAIT_S = 1.0


def _controller():
    from loom.serve import _controller as c
    return c.get()


def watch(ingress=False):
    """Starts the watcher (once per process and cluster) and waits for its
    first table."""
    with _lock:
        if ingress:
            _state["ingress"] = True
        t = _state["thread"]
        if t is None or not t.is_alive():
            _state["ready"] = threading.Event()
            _state["version"] = -1
            t = threading.Thread(target=_loop, args=(_state["ready"],),
                                 name="loom-serve-router", daemon=True)
            _state["thread"] = t
            t.start()
        ready = _state["ready"]
    ready.wait(30)


def forget():
    """Serving stopped: the next table starts from nothing."""
    with _lock:
        for name in _state["known"]:
            try:
                _core.serve_remove(name)
            except Exception:  # noqa: BLE001 - shut down already
                pass
        _state["known"] = set()
        _state["version"] = -1


def known():
    """The deployments in the last table loaded here."""
    return _state["known"]


def refresh():
    """Fetches the table now (a deployment this process has not seen)."""
    _apply(*loom.get(_controller().listen.remote("", -1, [], 0)))


def _loop(ready):
    router_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        controller = _controller()
    except Exception:  # noqa: BLE001 - no controller yet: serve.run makes it
        ready.set()
        return
    stats = []
    while _core.is_initialized():
        busy = any(s["requests"] or s["queued"] or s["ongoing"]
                   for s in stats)
        try:
            version, table = loom.get(controller.listen.remote(
                router_id, _state["version"], stats,
                _BUSY_WAIT_S if busy else _IDLE_WAIT_S))
        except Exception:  # noqa: BLE001 - shut down, or the controller died
            if not _core.is_initialized():
                break
            try:
                controller = _controller()
            except Exception:  # noqa: BLE001 - serve was shut down
                break
            continue
        _apply(version, table)
        ready.set()
        try:
            stats = _core.serve_take_stats()
        except Exception:  # noqa: BLE001 - shut down
            break
    ready.set()


def _apply(version, table):
    with _lock:
        if version <= _state["version"] and version >= 0:
            return
        _state["version"] = version
        deployments = table["deployments"]
        for name, d in deployments.items():
            batched = {k: (v[0], v[1], list(v[2]))
                       for k, v in d["batched"].items()}
            _core.serve_update(name, d["max_ongoing"], d["max_queued"],
                               batched, list(d["replicas"]),
                               list(d.get("streaming", ())))
        for name in _state["known"] - set(deployments):
            _core.serve_remove(name)
        _state["known"] = set(deployments)
        if _state["ingress"]:
            _core.serve_ingress_routes([tuple(r) for r in table["routes"]])
