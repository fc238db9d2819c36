"""DeploymentHandle: calls a deployment from Python through this process's
C++ router (the same rules as HTTP: replica limits, queue limit, deadlines,
priority, batching).

    handle = serve.get_app_handle("app")
    response = handle.predict.remote(x)      # a DeploymentResponse
    value = response.result(timeout_s=5)     # or: value = await response
    handle.options(deadline_ms=50, priority=1).remote(x)
"""
import asyncio
import concurrent.futures
import pickle
import threading

import cloudpickle

from loom import _core
from loom._private import futures
from loom.serve import _router
from loom.serve import exceptions

# ServeReply codes (runtime/serve/router.h).
_OK, _NO_DEPLOYMENT, _BACKPRESSURE, _DEADLINE, _DIED, _FAILED = range(6)
_OPTIONS = {"method_name", "deadline_ms", "priority", "idempotent",
            "multiplexed_model_id", "stream", "use_new_handle_api"}


def _error(code, message):
    return {
        _NO_DEPLOYMENT: exceptions.DeploymentUnavailableError,
        _BACKPRESSURE: exceptions.BackPressureError,
        _DEADLINE: exceptions.DeadlineExceededError,
        _DIED: exceptions.ReplicaDiedError,
    }.get(code, exceptions.RayServeException)(message)


def _decode(code, value, message):
    """The call's value, or raises what it failed with."""
    if code != _OK:
        raise _error(code, message)
    ok, blob = _core.msgpack_loads(value)
    if ok:
        return pickle.loads(blob)
    exc, tb = pickle.loads(blob)
    raise exc from exceptions.RayServeException(
        f"the replica raised:\n{tb}")


class DeploymentResponse:
    """A call in flight: `.result(timeout_s)` or `await response`."""

    def __init__(self):
        self._future = concurrent.futures.Future()
        self._lock = threading.Lock()
        self._call = None
        self._outcome = None  # (value, exception), decoded once

    def _submit(self, *args):
        with self._lock:  # _finish may run before serve_submit returns
            token = futures.on_signal(self._finish)
            self._call = _core.serve_submit(*args, token=token)

    def _decoded(self, answer):
        """The answer's (value, exception), unpickled once however many
        ask (the futures thread and .result())."""
        with self._lock:
            if self._outcome is None:
                try:
                    self._outcome = (_decode(*answer), None)
                except BaseException as e:  # noqa: BLE001 - for the waiter
                    self._outcome = (None, e)
            return self._outcome

    def _finish(self):
        with self._lock:
            call = self._call
        value, exc = self._decoded(call.wait(0))
        if exc is None:
            self._future.set_result(value)
        else:
            self._future.set_exception(exc)

    def result(self, timeout_s=None):
        ms = -1 if timeout_s is None else int(timeout_s * 1000)
        out = self._call.wait(ms)
        if out is None:
            raise TimeoutError(f"no answer within {timeout_s} s")
        value, exc = self._decoded(out)
        if exc is not None:
            raise exc
        return value

    def __await__(self):
        return asyncio.wrap_future(self._future).__await__()


class DeploymentHandle:
    def __init__(self, app_name, deployment_name, options=None):
        self.app_name = app_name
        self.deployment_name = deployment_name
        self._options = dict(options or {})

    @property
    def _full(self):
        return f"{self.app_name}#{self.deployment_name}"

    def options(self, **options):
        unknown = set(options) - _OPTIONS
        if unknown:
            raise ValueError(f"unknown handle options {sorted(unknown)}; "
                             f"known: {sorted(_OPTIONS)}")
        return DeploymentHandle(self.app_name, self.deployment_name,
                                {**self._options, **options})

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self.options(method_name=name)

    def remote(self, *args, **kwargs):
        _router.watch()
        if self._full not in _router.known():
            _router.refresh()  # deployed after this process last looked
        method = self._options.get("method_name", "__call__")
        payload = _core.msgpack_dumps(
            [method, cloudpickle.dumps((args, kwargs))])
        response = DeploymentResponse()
        response._submit(self._full, "_loom_serve_call", method, payload,
                         float(self._options.get("deadline_ms") or 0),
                         int(self._options.get("priority") or 0),
                         bool(self._options.get("idempotent", False)))
        return response

    def __reduce__(self):
        return DeploymentHandle, (self.app_name, self.deployment_name,
                                  self._options)

    def __repr__(self):
        return f"DeploymentHandle({self._full!r})"
