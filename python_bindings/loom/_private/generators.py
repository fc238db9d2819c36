"""Generators as tasks: num_returns="streaming" and num_returns="dynamic".

A streaming call returns an ObjectRefGenerator at once: iterating it (next,
for, async for) gives the ref of each value the generator yields, as soon as
it is yielded, while the task still runs. The caller owns every item, as it
owns a task's returns. If the generator raises (or its worker dies with no
retry left), the error comes at its position: the ref there raises it on
get, and the iteration ends. The producer runs at most about twice
`_generator_backpressure_num_objects` items (default 16; -1: no bound) ahead
of the consumer. A retried task reports from its first item again; the
caller keeps the first copy of each, so the consumer sees each item once.
Dropping the generator frees the items not read and stops the producer.

A dynamic call (as Ray had it) returns one ref, ready when the generator is
done, whose value is a DynamicObjectRefGenerator of all the item refs. Its
refs are readable in the process that made the call.

See runtime/streams.h for the protocol.
"""
import asyncio

from loom import _core
from loom import exceptions
from loom._private import errors

DEFAULT_WINDOW = 16
# TaskSpec.stream_window for num_returns="dynamic": unbounded, and the task's
# return becomes a DynamicObjectRefGenerator.
DYNAMIC = -2


def window_of(options, num_returns):
    """(num_returns for the core worker, stream window: 0 when the call is
    no generator)."""
    if num_returns == "streaming":
        w = options.get("_generator_backpressure_num_objects")
        return 1, DEFAULT_WINDOW if w is None or w == 0 else w
    if num_returns == "dynamic":
        return 1, DYNAMIC
    return num_returns, 0


def wrap(refs, num_returns):
    """What .remote() returns for refs from the core worker."""
    if num_returns == "streaming":
        return ObjectRefGenerator(refs[0])
    return refs[0] if len(refs) == 1 else refs


class ObjectRefGenerator:
    """The refs a streaming call yields, in order, each once it is ready to
    be read (iterate with for / next / async for)."""

    def __init__(self, ret):
        self._ret = ret  # the task's return: the item count, or its error
        self._index = 0
        self._ended = False

    def __iter__(self):
        return self

    def __next__(self):
        ref = self._next(-1)
        if ref is None:
            raise StopIteration
        return ref

    def _next_sync(self, timeout_s=None):
        """The next ref; None at the end; GetTimeoutError after timeout_s."""
        return self._next(-1 if timeout_s is None else
                          max(0, int(timeout_s * 1000)))

    def _next(self, timeout_ms):
        if self._ended:
            return None
        with errors.translated():
            ref = _core.stream_next(self._ret, self._index, timeout_ms)
        if ref is False:
            raise exceptions.GetTimeoutError(
                f"no item of the stream within {timeout_ms / 1000} s")
        if ref is not None:
            self._index += 1
            return ref
        self._ended = True
        _core.stream_close(self._ret)
        # Ended with an error (raised by the generator, or its worker died
        # for good): the error comes at this position.
        from loom._private import worker
        try:
            worker.get(self._ret)
        except Exception:  # noqa: BLE001 - the consumer reads it from the ref
            return self._ret
        return None

    def __aiter__(self):
        return self

    async def __anext__(self):
        loop = asyncio.get_running_loop()
        ref = await loop.run_in_executor(None, self._next, -1)
        if ref is None:
            raise StopAsyncIteration
        return ref

    def completed(self):
        """A ref ready once the task is done (its get raises the task's
        error, if any)."""
        return self._ret

    def is_finished(self):
        return self._ended

    def __del__(self):
        try:
            _core.stream_close(self._ret)
        except Exception:  # noqa: BLE001 - shut down already
            pass

    def __repr__(self):
        return f"ObjectRefGenerator({self._ret.hex()})"

    def __reduce__(self):
        raise TypeError("an ObjectRefGenerator cannot be passed to another "
                        "process: pass the refs it yields")


class DynamicObjectRefGenerator:
    """The value of a num_returns="dynamic" call: the refs of every value
    its generator yielded, in order."""

    def __init__(self, task_id, count):
        self._task_id = task_id
        self._refs = [_core.stream_item_ref(task_id, i) for i in range(count)]

    def __iter__(self):
        return iter(self._refs)

    def __len__(self):
        return len(self._refs)

    def __reduce__(self):
        return DynamicObjectRefGenerator, (self._task_id, len(self._refs))


class DynamicValue:
    """What a dynamic task returns: pickles as its caller's
    DynamicObjectRefGenerator (the executor makes no refs itself)."""

    def __init__(self, task_id, count):
        self.task_id = task_id
        self.count = count

    def __reduce__(self):
        return DynamicObjectRefGenerator, (self.task_id, self.count)
