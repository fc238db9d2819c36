"""The process's connection to Loom: init and shutdown in a driver, the
object API (put, get, wait), and a Python worker's main loop."""
import atexit
import os
import sys
import threading

from loom import _core
from loom import exceptions
from loom._private import errors
from loom._private import function_table
from loom._private import log_stream
from loom._private import runtime_env as rt
from loom._private import serialization

_lock = threading.RLock()
_state = {"tail": None, "namespace": None, "worker": False, "env": None,
          "env_packed": None}
# The task and actor this thread runs (workers).
task_context = threading.local()
actor_context = {"actor_id": None}


# Heavy modules the workers' fork server imports once when the driver uses
# them (never otherwise).
PREIMPORT = ("numpy",)


def _bin_dir():
    """The daemons' directory inside an installed package, if any."""
    here = os.path.join(os.path.dirname(os.path.dirname(__file__)), "bin")
    return here if os.path.exists(os.path.join(here, "loom-raylet")) else None


def init(address=None, *, num_cpus=None, num_gpus=None, resources=None,
         namespace=None, object_store_memory=None, ignore_reinit_error=False,
         log_to_driver=True, runtime_env=None, code_search_path=None,
         _session_root=None, _system_config=None, **unsupported):
    if unsupported:
        raise TypeError("loom.init() does not support: " +
                        ", ".join(sorted(unsupported)))
    with _lock:
        if _core.is_initialized():
            if ignore_reinit_error:
                return
            raise RuntimeError("Loom is already initialized "
                               "(call loom.shutdown() first)")
        if address is None:
            address = os.environ.get("LOOM_ADDRESS") or None
        if address is not None:
            if not isinstance(address, str) or not address:
                raise ValueError("address must be 'auto' or 'HOST:PORT'")
            given = [n for n, v in (("num_cpus", num_cpus),
                                    ("num_gpus", num_gpus),
                                    ("resources", resources),
                                    ("object_store_memory",
                                     object_store_memory)) if v is not None]
            if given:
                raise ValueError("when joining a running cluster, "
                                 f"{', '.join(given)} cannot be set: they "
                                 "describe a new local cluster")
        for name, v in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
            if v is not None and (not isinstance(v, int) or v < 0):
                raise ValueError(f"{name} must be an int >= 0, got {v!r}")
        resources = dict(resources or {})
        for k, v in resources.items():
            if not isinstance(k, str) or not isinstance(v, (int, float)) or \
                    v < 0:
                raise ValueError("resources must map names to numbers >= 0")
            if k in ("CPU", "GPU"):
                raise ValueError(f"use num_cpus / num_gpus, not "
                                 f"resources={{'{k}': ...}}")
        if namespace is not None and not isinstance(namespace, str):
            raise ValueError("namespace must be a string")
        job_env = rt.validate(runtime_env)
        code_search_path = _code_search_path(code_search_path)
        # Core worker settings: max_lineage_bytes (bytes of task specs kept
        # to rebuild lost objects; default $LOOM_MAX_LINEAGE_BYTES or 64 MiB).
        system_config = dict(_system_config or {})
        max_lineage_bytes = system_config.pop("max_lineage_bytes", -1)
        if system_config:
            raise ValueError("_system_config does not support: " +
                             ", ".join(sorted(system_config)))
        if not isinstance(max_lineage_bytes, int) or max_lineage_bytes < -1:
            raise ValueError("max_lineage_bytes must be an int >= 0, got "
                             f"{max_lineage_bytes!r}")
        bins = _bin_dir()
        if bins and "LOOM_BIN_DIR" not in os.environ:
            os.environ["LOOM_BIN_DIR"] = bins
        try:
            _core.init(address or "", -1 if num_cpus is None else num_cpus,
                       -1 if num_gpus is None else num_gpus, resources,
                       int(object_store_memory or 0), _session_root or "",
                       sys.executable, [p for p in sys.path],
                       os.getcwd(), bool(log_to_driver), max_lineage_bytes,
                       # Imported once in the fork server, for every
                       # worker: what this driver imported of these.
                       ",".join(m for m in PREIMPORT if m in sys.modules),
                       code_search_path)
        except RuntimeError as e:
            raise ConnectionError(str(e)) from None
        _state["namespace"] = namespace
        # The job's runtime_env: its directories uploaded once, now.
        try:
            _state["env_packed"] = rt.pack(job_env)
        except BaseException:
            _core.shutdown()
            raise
        _state["env"] = rt.unpack(_state["env_packed"][1])
        if namespace:
            # The job's namespace, at the head, for its workers.
            _core.kv_put(_namespace_key(_core.job_id()), namespace.encode())
        function_table.reset()
        if log_to_driver:
            _state["tail"] = log_stream.DriverPrinter()
    atexit.register(shutdown)


def _code_search_path(paths):
    """The shared libraries (or directories of them) holding the C++
    functions and actors this job calls (loom.cross_language), absolute."""
    if paths is None:
        return []
    if isinstance(paths, str):
        paths = [paths]
    out = []
    for p in paths:
        if not isinstance(p, (str, os.PathLike)):
            raise TypeError("code_search_path takes paths (str), got "
                            f"{type(p).__name__}")
        p = os.path.abspath(os.fspath(p))
        if not os.path.exists(p):
            raise ValueError(f"code_search_path: {p} does not exist")
        out.append(p)
    return out


def shutdown():
    with _lock:
        tail, _state["tail"] = _state["tail"], None
        if tail is not None:
            tail.stop()
        if _core.is_initialized() and not _state["worker"]:
            _state["env"] = _state["env_packed"] = None
            rt.forget_uploads()  # the next cluster has none of them
            _core.serve_reset()  # loom.serve's router and ingress, if any
            _core.shutdown()
            from loom._private import futures
            futures.fail_pending(exceptions.LoomError(futures.SHUT_DOWN))


def is_initialized():
    return _core.is_initialized()


def check_connected():
    """Connected, or (in a driver) connects: the first use of the API
    without loom.init() starts a private local cluster, as loom.init()
    would (set LOOM_ENABLE_AUTO_CONNECT=0 to raise instead)."""
    if _core.is_initialized():
        return
    with _lock:
        if _core.is_initialized():
            return
        if not _state["worker"] and \
                os.environ.get("LOOM_ENABLE_AUTO_CONNECT", "") != "0":
            init()
            return
    raise exceptions.LoomError("Loom is not initialized: call loom.init()")


def runtime_env():
    """The runtime_env this process's tasks and actors inherit (packed: its
    directories named by hash): the job's (loom.init) in a driver, the one
    it runs in in a worker."""
    if _state["env"] is None:
        _state["env"] = rt.unpack(os.environ.get(rt.ENV_VARIABLE, ""))
    return _state["env"]


def packed_env(options):
    """(env_vars, packed JSON) for a task or actor with these options: the
    inherited runtime_env, with its own over it; None when there is none."""
    own = options.get("runtime_env")
    if own is None and not runtime_env():
        return None
    if own is None:
        if _state["env_packed"] is None:
            _state["env_packed"] = rt.pack(runtime_env())
        return _state["env_packed"]
    return rt.pack(rt.merge(runtime_env(), own))


def _namespace_key(job_hex):
    return f"job_namespace:{job_hex}"


def namespace():
    """The job's namespace (None: the default one). A worker reads its
    job's from the head once: tasks and actors inherit the driver's."""
    with _lock:
        if _state["worker"] and _state["namespace"] is None:
            value = _core.kv_get(_namespace_key(_core.job_id()))
            _state["namespace"] = value.decode() if value else ""
        return _state["namespace"]


def _timeout_ms(timeout):
    if timeout is None:
        return -1
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be None or a number, got "
                        f"{type(timeout).__name__}")
    if not timeout >= 0:  # NaN too
        raise ValueError(f"timeout must be None or a number >= 0, "
                         f"got {timeout!r}")
    return int(timeout * 1000)


def put(value):
    check_connected()
    if isinstance(value, _core.ObjectRef):
        raise TypeError("loom.put() of an ObjectRef is not allowed: "
                        "pass the ref itself")
    data, buffers, refs = serialization.serialize(value)
    with errors.translated():
        return _core.put(data, buffers, refs)


def get(refs, timeout=None):
    check_connected()
    single = isinstance(refs, _core.ObjectRef)
    if single:
        refs = [refs]
    elif not isinstance(refs, (list, tuple)):
        raise TypeError("loom.get() takes an ObjectRef or a list of them, "
                        f"not {type(refs).__name__}")
    refs = list(refs)
    for r in refs:
        if not isinstance(r, _core.ObjectRef):
            raise TypeError(f"loom.get() expects ObjectRefs, got "
                            f"{type(r).__name__}")
    results = _core.get(refs, _timeout_ms(timeout))
    if results is None:
        raise exceptions.GetTimeoutError(
            f"loom.get() timed out after {timeout} s")
    values = []
    with serialization.borrows():
        for ok, payload in results:
            if not ok:
                raise errors.from_tuple(payload)
            values.append(serialization.deserialize(payload))
    return values[0] if single else values


def wait(refs, *, num_returns=1, timeout=None, fetch_local=True):
    """(ready, not ready): the first num_returns refs to be ready, or those
    ready when timeout (seconds; None: no limit) passes, in the order given.
    Ray's rules: a list of distinct ObjectRefs, 1 <= num_returns <=
    len(refs). fetch_local is accepted (values are read where they are)."""
    check_connected()
    if isinstance(refs, _core.ObjectRef) or not isinstance(refs,
                                                           (list, tuple)):
        raise TypeError("loom.wait() takes a list of ObjectRefs, not "
                        f"{type(refs).__name__}")
    refs = list(refs)
    for r in refs:
        if not isinstance(r, _core.ObjectRef):
            raise TypeError(f"loom.wait() expects ObjectRefs, got "
                            f"{type(r).__name__}")
    if isinstance(num_returns, bool) or not isinstance(num_returns, int):
        raise TypeError("num_returns must be an int, got "
                        f"{type(num_returns).__name__}")
    if not isinstance(fetch_local, bool):
        raise TypeError("fetch_local must be a bool, got "
                        f"{type(fetch_local).__name__}")
    timeout_ms = _timeout_ms(timeout)
    if not refs:
        return [], []
    if len(set(refs)) != len(refs):
        raise ValueError("loom.wait() got the same ObjectRef twice")
    if num_returns < 1:
        raise ValueError(f"num_returns must be >= 1, got {num_returns}")
    if num_returns > len(refs):
        raise ValueError(f"num_returns ({num_returns}) cannot be greater "
                         f"than the number of refs ({len(refs)})")
    ready_flags = _core.wait(refs, num_returns, timeout_ms)
    ready, unready = [], []
    for r, flag in zip(refs, ready_flags):
        (ready if flag and len(ready) < num_returns else unready).append(r)
    return ready, unready


def cancel(ref, *, force=False, recursive=True):
    """Cancels the task or actor call that returns `ref`: queued, it never
    runs; running, it is interrupted (KeyboardInterrupt in a sync task, a
    cancelled coroutine in an async actor; force=True ends a task's worker
    and is refused for actor calls). Its get raises TaskCancelledError. A
    running task's own tasks are cancelled with it, unless
    recursive=False."""
    check_connected()
    from loom._private.generators import ObjectRefGenerator
    if isinstance(ref, ObjectRefGenerator):
        ref = ref.completed()  # the generator's task
    if not isinstance(ref, _core.ObjectRef):
        raise TypeError("loom.cancel() takes an ObjectRef")
    _core.cancel(ref, bool(force), bool(recursive))


def nodes():
    check_connected()
    return _core.nodes()


def _sum_resources(field):
    total = {}
    for n in nodes():
        if not n["Alive"]:
            continue
        for k, v in n[field].items():
            total[k] = total.get(k, 0.0) + v
    return total


def cluster_resources():
    return _sum_resources("Resources")


def available_resources():
    return _sum_resources("Available")


def mark_worker():
    _state["worker"] = True


def is_worker():
    return _state["worker"]
