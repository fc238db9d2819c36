"""ObjectRefs as futures: `ref.future()`, `await ref`, `ref._on_completed`.

    fut = ref.future()                      # a concurrent.futures.Future
    fut.add_done_callback(lambda f: print(f.result()))
    value = await ref                       # in any asyncio code
    value = await asyncio.wrap_future(ref.future())

One daemon thread per process ("loom-ref-futures") completes them all: each
watched ref registers a token with the core worker, which queues the token
when the object becomes ready (a value or an error); the thread sleeps in
_core.take_ready until tokens arrive, reads each value and runs the
callbacks. Callbacks run on that thread, one after another: keep them
short."""
import asyncio
import concurrent.futures
import itertools
import os
import sys
import threading
import traceback

from loom import _core
from loom import exceptions
from loom._private import worker

_lock = threading.Lock()
_pending = {}  # token -> (ref, callback(ref))
_tokens = itertools.count(1)
_thread = {"pid": None}
SHUT_DOWN = "Loom shut down before the object was ready"


def when_ready(ref, callback):
    """Calls callback(ref) on the futures thread once `ref` is ready. The
    ref is held (its object stays alive) until then."""
    worker.check_connected()
    with _lock:
        if _thread["pid"] != os.getpid():  # first use (or a forked child)
            _thread["pid"] = os.getpid()
            threading.Thread(target=_dispatch, name="loom-ref-futures",
                             daemon=True).start()
        token = next(_tokens)
        _pending[token] = (ref, callback)
    try:
        _core.notify_when_ready(ref, token)
    except BaseException:
        with _lock:
            _pending.pop(token, None)
        raise


def on_signal(callback):
    """A token for _core (a serve call's completion): once it is queued,
    callback() runs on the futures thread."""
    worker.check_connected()
    with _lock:
        if _thread["pid"] != os.getpid():
            _thread["pid"] = os.getpid()
            threading.Thread(target=_dispatch, name="loom-ref-futures",
                             daemon=True).start()
        token = next(_tokens)
        _pending[token] = (None, lambda _ref, _error: callback())
    return token


def fail_pending(error):
    """Completes every watched ref with `error` (loom.shutdown: the core
    worker that would have said they are ready is gone)."""
    with _lock:
        entries = list(_pending.values())
        _pending.clear()
    for ref, callback in entries:
        _run(callback, ref, error)


def _dispatch():
    while True:
        tokens = _core.take_ready(-1)
        for token in tokens:
            with _lock:
                entry = _pending.pop(token, None)
            if entry is not None:
                _run(entry[1], entry[0], None)


def _run(callback, ref, error):
    try:
        callback(ref, error)
    except BaseException:  # noqa: BLE001 - a callback must not end the thread
        print(f"loom: a callback on {ref!r} raised:", file=sys.stderr)
        traceback.print_exc()


def _outcome(ref, error):
    """(value, None) or (None, exception) for a ready ref."""
    if error is not None:
        return None, error
    if not _core.is_initialized():
        return None, exceptions.LoomError(SHUT_DOWN)
    try:
        return worker.get(ref), None
    except Exception as e:  # noqa: BLE001 - handed to the future
        return None, e


def future(ref):
    """A concurrent.futures.Future that completes with the ref's value, or
    its error. Cancelling the future does not cancel the task."""
    fut = concurrent.futures.Future()

    def done(r, error):
        if fut.cancelled():
            return
        value, exc = _outcome(r, error)
        try:
            if exc is None:
                fut.set_result(value)
            else:
                fut.set_exception(exc)
        except concurrent.futures.InvalidStateError:
            pass  # cancelled meanwhile

    when_ready(ref, done)
    return fut


def on_completed(ref, callback):
    """Ray's ref._on_completed: callback(value), where value is the
    exception when the task failed; runs on the futures thread."""
    def done(r, error):
        value, exc = _outcome(r, error)
        callback(value if exc is None else exc)

    when_ready(ref, done)


def as_future(ref):
    """An asyncio future on the running loop."""
    return asyncio.wrap_future(future(ref))


def install():
    """Adds future(), as_future(), _on_completed() and __await__ to
    ObjectRef."""
    _core.ObjectRef.future = future
    _core.ObjectRef.as_future = lambda ref, _internal=False: as_future(ref)
    _core.ObjectRef._on_completed = on_completed
    _core.ObjectRef.__await__ = lambda ref: as_future(ref).__await__()

