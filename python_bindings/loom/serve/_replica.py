"""A replica: the actor that runs one copy of a deployment's code.

The router (C++) calls it with msgpack values: `_loom_serve_http` with
[method, path, query, headers, body, route prefix] and answers
[status, content type, headers, body]; `_loom_serve_call` (a handle) with
[method name, pickled (args, kwargs)] and answers [ok, pickled value or
exception]. Each has a `_batch` twin taking a list, for batched methods.
Sync user methods run on the replica's event loop, as in Ray Serve."""
import asyncio
import contextlib
import inspect
import pickle
import time
import traceback

import cloudpickle

from loom.serve import _batching
from loom.serve import _http


def _pickled_error(exc):
    tb = "".join(traceback.format_exception(type(exc), exc,
                                            exc.__traceback__))
    try:
        return cloudpickle.dumps((exc, tb))
    except Exception:  # noqa: BLE001 - an exception that does not pickle
        return cloudpickle.dumps((RuntimeError(f"{type(exc).__name__}: "
                                               f"{exc}"), tb))


_metrics = {}


def _record(deployment, outcome, seconds, n=1):
    """loom_serve_replica_* (exported by the node's raylet)."""
    if not _metrics:
        from loom.util.metrics import Counter, Histogram
        _metrics["requests"] = Counter(
            "loom_serve_replica_requests_total", "Requests a replica ran, by "
            "outcome (ok, error)", ("deployment", "outcome"), _own=True)
        _metrics["latency"] = Histogram(
            "loom_serve_replica_processing_latency_ms", "Time in the user's "
            "code per call (a batch counts once)",
            [0.1, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000, 10000],
            ("deployment",), _own=True)
    tags = {"deployment": deployment, "outcome": outcome}
    _metrics["requests"].inc(n, tags)
    _metrics["latency"].observe(seconds * 1000, {"deployment": deployment})


class Replica:
    def __init__(self, deployment, definition, init_args, user_config,
                 is_function):
        self._deployment = deployment
        self._definition = definition
        self._init_args = init_args
        self._user_config = user_config
        self._is_function = is_function
        self._user = None
        self._ongoing = 0

    async def initialize(self):
        target = cloudpickle.loads(self._definition)
        args, kwargs = cloudpickle.loads(self._init_args)
        if self._is_function:
            self._user = target
        else:
            self._user = target(*args, **kwargs)
        if self._user_config is not None:
            await self.reconfigure(self._user_config)
        return True

    async def reconfigure(self, user_config):
        self._user_config = user_config
        fn = getattr(self._user, "reconfigure", None)
        if fn is not None and not self._is_function:
            out = fn(user_config)
            if inspect.isawaitable(out):
                await out
        return True

    async def check_health(self):
        fn = getattr(self._user, "check_health", None)
        if fn is not None and not self._is_function:
            out = fn()
            if inspect.isawaitable(out):
                await out
        return True

    async def wait_until_stopped(self):
        """Never returns: the controller learns of the process's death
        when this call fails."""
        await asyncio.Event().wait()

    async def prepare_for_shutdown(self, timeout_s):
        """Waits (up to timeout_s) for the requests it runs to end."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        quiet_since = loop.time()
        # Until nothing ran for 100 ms: a call a router sent just before it
        # learned of the new table may still be on its way.
        while loop.time() < end:
            if self._ongoing > 0:
                quiet_since = loop.time()
            elif loop.time() - quiet_since >= 0.1:
                break
            await asyncio.sleep(0.02)
        return self._ongoing

    @contextlib.contextmanager
    def _running(self, n):
        """Counts n requests as running here while the block runs (what
        prepare_for_shutdown waits on)."""
        self._ongoing += n
        try:
            yield
        finally:
            self._ongoing -= n

    def _method(self, name):
        if self._is_function:
            if name != "__call__":
                raise AttributeError(f"a function deployment has only "
                                     f"__call__, not {name!r}")
            return self._user
        return getattr(self._user, name)

    async def _invoke(self, name, args, kwargs):
        start = time.perf_counter()
        outcome = "error"
        try:
            out = self._method(name)(*args, **kwargs)
            if inspect.isawaitable(out):
                out = await out
            outcome = "ok"
            return out
        finally:
            _record(self._deployment, outcome, time.perf_counter() - start)

    async def _invoke_batch(self, name, items):
        fn = self._method(name)
        raw = getattr(fn, "__loom_batch_fn__", None)
        if raw is None:  # not batched here: one call each
            return [await self._invoke(name, (i,), {}) for i in items]
        bound = () if self._is_function else (self._user,)
        start = time.perf_counter()
        outcome = "error"
        try:
            out = await _batching.call_batch(raw, bound, items)
            outcome = "ok"
            return out
        finally:
            _record(self._deployment, outcome, time.perf_counter() - start,
                    len(items))

    async def _loom_serve_http(self, fields):
        with self._running(1):
            try:
                result = await self._invoke(
                    "__call__", (_http.Request.from_wire(fields),), {})
                return _http.to_answer(result)
            except Exception as e:  # noqa: BLE001 - the user's error: a 500
                status = _http.status_of(e)
                if status >= 500:
                    traceback.print_exc()
                return _http.error_answer(status, e)

    async def _loom_serve_http_stream(self, fields):
        """A generator's answer, item by item: [status, content type,
        headers], then each chunk as bytes."""
        with self._running(1):
            try:
                out = await self._invoke(
                    "__call__", (_http.Request.from_wire(fields),), {})
                status, media, headers = 200, "text/plain; charset=utf-8", []
                if hasattr(out, "body_iterator"):  # a StreamingResponse
                    status = int(out.status_code)
                    media = out.media_type or media
                    headers = [(k, v) for k, v in out.headers.items()
                               if k.lower() != "content-type"]
                    out = out.body_iterator
            except Exception as e:  # noqa: BLE001 - before any byte
                status = _http.status_of(e)
                if status >= 500:
                    traceback.print_exc()
                head = _http.error_answer(status, e)
                yield head[:3]
                yield head[3]
                return
            yield [status, media, headers]
            if inspect.isasyncgen(out):
                async for chunk in out:
                    yield _http.chunk(chunk)
            elif inspect.isgenerator(out) or isinstance(out, (list, tuple)):
                for chunk in out:
                    yield _http.chunk(chunk)
            else:
                yield _http.chunk(out)

    async def _loom_serve_http_batch(self, batch):
        with self._running(len(batch)):
            try:
                requests = [_http.Request.from_wire(f) for f in batch]
                out = await self._invoke_batch("__call__", requests)
                return [_http.to_answer(r) for r in out]
            except Exception as e:  # noqa: BLE001 - each request gets a 500
                traceback.print_exc()
                return [_http.error_answer(500, e)] * len(batch)

    async def _loom_serve_call(self, payload):
        with self._running(1):
            try:
                name, blob = payload
                args, kwargs = pickle.loads(blob)
                value = await self._invoke(name, args, kwargs)
                if inspect.isasyncgen(value):  # a handle gets a stream whole
                    value = [v async for v in value]
                elif inspect.isgenerator(value):
                    value = list(value)
                return [True, cloudpickle.dumps(value)]
            except Exception as e:  # noqa: BLE001 - raised at the caller
                return [False, _pickled_error(e)]

    async def _loom_serve_call_batch(self, payloads):
        with self._running(len(payloads)):
            try:
                name = payloads[0][0]
                items = []
                for _, blob in payloads:
                    args, kwargs = pickle.loads(blob)
                    if len(args) != 1 or kwargs:
                        raise TypeError("a @serve.batch method is called with "
                                        "one positional argument")
                    items.append(args[0])
                out = await self._invoke_batch(name, items)
                return [[True, cloudpickle.dumps(v)] for v in out]
            except Exception as e:  # noqa: BLE001 - raised at each caller
                return [[False, _pickled_error(e)]] * len(payloads)
