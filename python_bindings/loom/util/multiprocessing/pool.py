"""Pool: multiprocessing.Pool's API over Loom actors, one actor per
"process", anywhere in the cluster.

    from loom.util.multiprocessing import Pool

    with Pool(processes=4) as pool:
        pool.map(square, range(100))                # [0, 1, 4, ...]
        for y in pool.imap_unordered(square, xs): ...
        r = pool.apply_async(f, (1, 2), callback=print)
        r.get(timeout=10)

Work goes to the actors in chunks (`chunksize` values per call), round
robin; each chunk's values run one after another in its actor. Results
come back through the object store, errors as the original exception."""
import itertools
import multiprocessing
import threading

from loom import exceptions
from loom._private import worker
from loom.actor import ActorClass, kill

RUN, CLOSE, TERMINATE = "RUN", "CLOSE", "TERMINATE"
_actor_class = {"cls": None}


class _PoolActor:
    def __init__(self, initializer, initargs):
        if initializer is not None:
            initializer(*initargs)

    def run_batch(self, func, batch, star):
        if star:
            return [func(*args) for args in batch]
        return [func(arg) for arg in batch]

    def run_call(self, func, args, kwargs):
        return [func(*args, **kwargs)]


class AsyncResult:
    """The result of *_async: complete once every chunk is, or at the first
    chunk that fails. `callback` / `error_callback` run on Loom's futures
    thread (keep them short)."""

    def __init__(self, refs, transform, callback=None, error_callback=None):
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._chunks = [None] * len(refs)
        self._left = len(refs)
        self._transform = transform
        self._callback = callback
        self._error_callback = error_callback
        self._value = self._error = None
        self._done = not refs
        if not refs:
            self._finish(None)
        for i, ref in enumerate(refs):
            ref.future().add_done_callback(
                lambda fut, i=i: self._on_chunk(i, fut))

    def _on_chunk(self, i, fut):
        error = fut.exception()
        with self._lock:
            if self._done:
                return
            if error is None:
                self._chunks[i] = fut.result()
                self._left -= 1
                if self._left:
                    return
            self._done = True
        self._finish(error)

    def _finish(self, error):
        # As in multiprocessing: the callback has run when get() returns.
        if error is None:
            try:
                self._value = self._transform(self._chunks)
            except Exception as e:  # noqa: BLE001 - reported by get()
                error = e
        self._error = error
        try:
            if error is None and self._callback is not None:
                self._callback(self._value)
            elif error is not None and self._error_callback is not None:
                self._error_callback(error)
        finally:
            self._event.set()

    def get(self, timeout=None):
        """The value; raises the task's error, or multiprocessing's
        TimeoutError after `timeout` seconds."""
        if not self._event.wait(timeout):
            raise multiprocessing.TimeoutError(
                f"no result within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._value

    def wait(self, timeout=None):
        self._event.wait(timeout)

    def ready(self):
        return self._event.is_set()

    def successful(self):
        """Whether it completed without an error (ValueError before it
        completes)."""
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._error is None


class IMapIterator:
    """The iterator of imap and imap_unordered; next(timeout) raises
    multiprocessing's TimeoutError."""

    def __init__(self, refs, ordered):
        self._refs = list(refs)
        self._ordered = ordered
        self._buffer = []

    def __iter__(self):
        return self

    def __next__(self):
        return self.next()

    def next(self, timeout=None):
        while not self._buffer:
            if not self._refs:
                raise StopIteration
            if self._ordered:
                ref = self._refs[0]
                if timeout is not None and \
                        not worker.wait([ref], timeout=timeout)[0]:
                    raise multiprocessing.TimeoutError
            else:
                ready, _ = worker.wait(self._refs, timeout=timeout)
                if not ready:
                    raise multiprocessing.TimeoutError
                ref = ready[0]
            self._refs.remove(ref)
            self._buffer = list(worker.get(ref))
        return self._buffer.pop(0)

    __next__ = next


def _flatten(chunks):
    return [v for chunk in chunks for v in chunk]


def _chunks(values, size):
    for i in range(0, len(values), size):
        yield values[i:i + size]


class Pool:
    def __init__(self, processes=None, initializer=None, initargs=None,
                 maxtasksperchild=None, context=None, loom_address=None,
                 loom_remote_args=None, ray_address=None,
                 ray_remote_args=None):
        if not worker.is_initialized():
            worker.init(address=loom_address or ray_address)
        if processes is None:
            processes = int(worker.cluster_resources().get("CPU", 1)) or 1
        if not isinstance(processes, int) or processes < 1:
            raise ValueError("Processes in the pool must be >0.")
        if maxtasksperchild is not None and (
                not isinstance(maxtasksperchild, int) or maxtasksperchild < 1):
            raise ValueError("maxtasksperchild must be a positive int or None")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._processes = processes
        self._init = (initializer, tuple(initargs or ()))
        self._maxtasks = maxtasksperchild
        self._remote_args = dict(loom_remote_args or ray_remote_args or {})
        self._actors = [self._new_actor() for _ in range(processes)]
        self._runs = [0] * processes  # calls sent to each actor
        self._retired = {}  # actor -> its last call, alive until it ends
        self._next = itertools.cycle(range(processes))
        self._outstanding = []  # calls join() waits for
        self._results = []      # and results, so that callbacks have run
        self._prune_at = 64
        self._state = RUN

    def _new_actor(self):
        if _actor_class["cls"] is None:
            _actor_class["cls"] = ActorClass(_PoolActor, {})
        return _actor_class["cls"].options(**self._remote_args).remote(
            *self._init)

    def _check_running(self):
        if self._state != RUN:
            raise ValueError("Pool not running")

    def _send(self, method, *args):
        i = next(self._next)
        actor = self._actors[i]
        ref = getattr(actor, method).remote(*args)
        self._outstanding.append(ref)
        self._runs[i] += 1
        if self._maxtasks is not None and self._runs[i] >= self._maxtasks:
            # A fresh actor takes its place; the old one stays until the
            # calls it was sent are done.
            self._retired[actor] = ref
            ref.future().add_done_callback(
                lambda _, a=actor: self._retired.pop(a, None))
            self._actors[i], self._runs[i] = self._new_actor(), 0
        if len(self._outstanding) > self._prune_at:
            # Forget what is done (join waits for the rest).
            _, self._outstanding = worker.wait(
                self._outstanding, num_returns=len(self._outstanding),
                timeout=0)
            self._prune_at = max(64, 2 * len(self._outstanding))
        return ref

    def _map_refs(self, func, iterable, chunksize, star):
        self._check_running()
        values = list(iterable)
        if chunksize is None:
            chunksize, extra = divmod(len(values), self._processes * 4)
            chunksize += bool(extra)
        if chunksize < 1:
            chunksize = 1
        fn = worker.put(func)
        return [self._send("run_batch", fn, chunk, star)
                for chunk in _chunks(values, chunksize)]

    def _track(self, result):
        """join() waits for it (its callbacks included)."""
        self._results = [r for r in self._results if not r.ready()]
        self._results.append(result)
        return result

    # --- apply ------------------------------------------------------------

    def apply(self, func, args=(), kwds=None):
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds=None, callback=None,
                    error_callback=None):
        self._check_running()
        ref = self._send("run_call", func, tuple(args), dict(kwds or {}))
        return self._track(AsyncResult([ref], lambda chunks: chunks[0][0],
                                       callback, error_callback))

    # --- map --------------------------------------------------------------

    def map(self, func, iterable, chunksize=None):
        return self.map_async(func, iterable, chunksize).get()

    def map_async(self, func, iterable, chunksize=None, callback=None,
                  error_callback=None):
        refs = self._map_refs(func, iterable, chunksize, False)
        return self._track(AsyncResult(refs, _flatten, callback,
                                       error_callback))

    def starmap(self, func, iterable, chunksize=None):
        return self.starmap_async(func, iterable, chunksize).get()

    def starmap_async(self, func, iterable, chunksize=None, callback=None,
                      error_callback=None):
        refs = self._map_refs(func, [tuple(a) for a in iterable], chunksize,
                              True)
        return self._track(AsyncResult(refs, _flatten, callback,
                                       error_callback))

    def imap(self, func, iterable, chunksize=1):
        return IMapIterator(self._map_refs(func, iterable, chunksize, False),
                            ordered=True)

    def imap_unordered(self, func, iterable, chunksize=1):
        return IMapIterator(self._map_refs(func, iterable, chunksize, False),
                            ordered=False)

    # --- lifetime ---------------------------------------------------------

    def close(self):
        """No more work is accepted; what was sent still runs."""
        if self._state == RUN:
            self._state = CLOSE

    def terminate(self):
        """Stops the actors now; work not done fails."""
        if self._state == TERMINATE:
            return
        self._state = TERMINATE
        for actor in self._actors + list(self._retired.copy()):
            try:
                kill(actor)
            except exceptions.LoomError:
                pass
        self._actors, self._retired = [], {}
        self._outstanding, self._results = [], []

    def join(self):
        """Waits for the work sent to finish (after close or terminate)."""
        if self._state == RUN:
            raise ValueError("Pool is still running")
        refs, self._outstanding = self._outstanding, []
        if refs:
            worker.wait(refs, num_returns=len(refs))
        results, self._results = self._results, []
        for r in results:
            r.wait()

    def __enter__(self):
        self._check_running()
        return self

    def __exit__(self, *exc):
        self.terminate()
