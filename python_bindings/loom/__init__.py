"""Loom: tasks, actors and a shared-memory object store over a cluster.

    import loom
    loom.init()                      # a private local cluster

    @loom.remote
    def square(x):
        return x * x

    print(loom.get([square.remote(i) for i in range(4)]))
"""
from loom import _core
from loom import exceptions
from loom._core import ObjectRef
from loom._private.worker import (available_resources, cancel,
                                  cluster_resources, get, init,
                                  is_initialized, nodes, put, shutdown, wait)
from loom.actor import ActorClass, ActorHandle, get_actor, kill, method
from loom.remote_function import RemoteFunction
from loom.runtime_context import get_gpu_ids, get_runtime_context
from loom import util  # noqa: F401
from loom import cross_language  # noqa: F401
from loom._private import futures as _futures
from loom._private.generators import (DynamicObjectRefGenerator,
                                      ObjectRefGenerator)

__version__ = "0.1.0"


def remote(*args, **options):
    """@loom.remote, or @loom.remote(num_cpus=..., ...), on a function or a
    class."""
    def wrap(target):
        if isinstance(target, type):
            return ActorClass(target, options)
        if callable(target):
            return RemoteFunction(target, options)
        raise TypeError("@loom.remote applies to functions and classes")

    if len(args) == 1 and not options and callable(args[0]):
        return wrap(args[0])
    if args:
        raise TypeError("@loom.remote takes keyword options only")
    return wrap


# ref.future(), ref.as_future(), ref._on_completed(cb), `await ref`.
_futures.install()

def timeline(filename=None, job_id=None):
    """The tasks the head holds as a Chrome trace (Perfetto and
    chrome://tracing open it): written to `filename`, else returned as a
    list of trace events. A process per node, a thread per worker, a slice
    per task with its phases; see docs/observability.md."""
    import json
    from loom._private import worker as _worker
    _worker.check_connected()
    trace = _core.timeline("", job_id or "")
    if filename is None:
        return json.loads(trace)["traceEvents"]
    with open(filename, "w") as f:
        f.write(trace)
    return None


__all__ = ["init", "shutdown", "is_initialized", "remote", "get", "put",
           "wait", "kill", "cancel", "get_actor", "method", "nodes",
           "timeline",
           "cluster_resources", "available_resources", "get_runtime_context",
           "get_gpu_ids", "ObjectRef", "ActorHandle", "exceptions",
           "ObjectRefGenerator", "DynamicObjectRefGenerator"]
