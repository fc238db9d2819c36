"""@serve.batch: a method (or function) that takes a list and returns a
list, one answer per item, called by its callers one item at a time.

    @serve.deployment
    class Model:
        @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
        async def __call__(self, requests):
            return [len(await r.body()) for r in requests]

When the batched method is what callers call (`__call__` over HTTP, or the
method a handle names), the batches are formed by the C++ router before
the replica (runtime/serve/router.h): earliest deadline first, sent when
full, when the oldest has waited batch_wait_timeout_s, or when waiting
longer would miss a deadline. A batched method the replica calls itself
batches here, on the replica's event loop (size and wait only)."""
import asyncio
import functools
import inspect


def _check(max_batch_size, batch_wait_timeout_s, preferred):
    if not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise ValueError("max_batch_size must be an int >= 1, got "
                         f"{max_batch_size!r}")
    if not isinstance(batch_wait_timeout_s, (int, float)) or \
            batch_wait_timeout_s < 0:
        raise ValueError("batch_wait_timeout_s must be a number >= 0, got "
                         f"{batch_wait_timeout_s!r}")
    for s in preferred:
        if not isinstance(s, int) or not 1 <= s <= max_batch_size:
            raise ValueError("preferred_batch_sizes must be ints from 1 to "
                             f"max_batch_size, got {s!r}")


def batch(_func=None, *, max_batch_size=10, batch_wait_timeout_s=0.01,
          preferred_batch_sizes=None):
    preferred = tuple(preferred_batch_sizes or ())
    _check(max_batch_size, batch_wait_timeout_s, preferred)
    config = (max_batch_size, float(batch_wait_timeout_s), list(preferred))

    def wrap(fn):
        is_method = "self" in inspect.signature(fn).parameters

        @functools.wraps(fn)
        async def one(*args):
            owner = args[0] if is_method else fn
            item = args[-1]
            queue = _LocalBatcher.of(owner, fn, config)
            return await queue.submit(args[:-1], item)

        one.__loom_batch__ = config
        one.__loom_batch_fn__ = fn
        return one

    return wrap(_func) if callable(_func) else wrap


async def call_batch(fn, bound, items):
    """Runs the user's batched function on a list; its list of answers."""
    out = fn(*bound, items)
    if inspect.isawaitable(out):
        out = await out
    out = list(out)
    if len(out) != len(items):
        raise TypeError(f"a @serve.batch method returned {len(out)} answers "
                        f"for {len(items)} requests")
    return out


class _LocalBatcher:
    """Batches calls a replica makes itself, on its event loop."""

    @staticmethod
    def of(owner, fn, config):
        key = f"__loom_batcher_{fn.__name__}"
        b = getattr(owner, key, None) if owner is not fn else \
            fn.__dict__.get(key)
        if b is None:
            b = _LocalBatcher(fn, config)
            try:
                setattr(owner, key, b)
            except AttributeError:
                pass
        return b

    def __init__(self, fn, config):
        self._fn = fn
        self._max, self._wait, _ = config
        self._items = []
        self._flush = None

    async def submit(self, bound, item):
        fut = asyncio.get_running_loop().create_future()
        self._items.append((item, fut))
        if len(self._items) >= self._max:
            self._send(bound)
        elif self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(
                self._wait, self._send, bound)
        return await fut

    def _send(self, bound):
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        items, self._items = self._items[:self._max], self._items[self._max:]
        if self._items:
            self._flush = asyncio.get_running_loop().call_later(
                self._wait, self._send, bound)
        asyncio.ensure_future(self._run(bound, items))

    async def _run(self, bound, items):
        try:
            out = await call_batch(self._fn, bound, [i for i, _ in items])
            for (_, fut), value in zip(items, out):
                if not fut.done():
                    fut.set_result(value)
        except Exception as e:  # noqa: BLE001 - each caller gets it
            for _, fut in items:
                if not fut.done():
                    fut.set_exception(e)


def streaming_methods(target):
    """The methods (\"__call__\" for a function) that are generators: their
    HTTP answers stream."""
    def streams(f):
        return inspect.isgeneratorfunction(f) or inspect.isasyncgenfunction(f)
    if inspect.isfunction(target):
        return ["__call__"] if streams(target) else []
    return [name for name, member in inspect.getmembers(target)
            if callable(member) and streams(member)]


def batched_methods(target):
    """{method name: (max size, wait s, preferred)} for a class or function
    deployment ("__call__" for a batched function)."""
    if inspect.isfunction(target):
        c = getattr(target, "__loom_batch__", None)
        return {"__call__": c} if c else {}
    out = {}
    for name, member in inspect.getmembers(target):
        c = getattr(member, "__loom_batch__", None)
        if c:
            out[name] = c
    return out
