"""Queue: a first-in first-out queue held by an actor, shareable with tasks
and actors (pass the Queue itself).

    q = Queue(maxsize=100, actor_options={"num_cpus": 0})
    q.put(1); q.put_nowait_batch([2, 3])
    q.get(timeout=1)            # 1; raises Empty after 1 s on an empty queue
    q.get_nowait_batch(2)       # [2, 3]
    q.shutdown()

The actor is an async actor: a blocked get or put waits on its event loop
and holds nothing else up."""
import asyncio
import queue as _stdlib_queue
from collections.abc import Iterable

from loom._private import worker
from loom.actor import ActorClass, kill


class Empty(_stdlib_queue.Empty):
    pass


class Full(_stdlib_queue.Full):
    pass


class _QueueActor:
    """Answers (True, result) or (False, message): Empty and Full are raised
    by the caller, not sent back as errors."""

    def __init__(self, maxsize):
        self.maxsize = maxsize
        self.queue = None  # made on the actor's event loop

    def _q(self):
        if self.queue is None:
            self.queue = asyncio.Queue(self.maxsize)
        return self.queue

    async def qsize(self):
        return self._q().qsize()

    async def empty(self):
        return self._q().empty()

    async def full(self):
        return self._q().full()

    async def put(self, item, timeout=None):
        try:
            await asyncio.wait_for(self._q().put(item), timeout)
        except asyncio.TimeoutError:
            return False, f"the queue stayed full for {timeout} s"
        return True, None

    async def put_nowait(self, item):
        try:
            self._q().put_nowait(item)
        except asyncio.QueueFull:
            return False, "the queue is full"
        return True, None

    async def put_nowait_batch(self, items):
        q = self._q()
        if self.maxsize > 0 and len(items) + q.qsize() > self.maxsize:
            return False, (f"Cannot add {len(items)} items to queue of size "
                           f"{q.qsize()} and maxsize {self.maxsize}.")
        for item in items:
            q.put_nowait(item)
        return True, None

    async def get(self, timeout=None):
        try:
            return True, await asyncio.wait_for(self._q().get(), timeout)
        except asyncio.TimeoutError:
            return False, f"the queue stayed empty for {timeout} s"

    async def get_nowait(self):
        try:
            return True, self._q().get_nowait()
        except asyncio.QueueEmpty:
            return False, "the queue is empty"

    async def get_nowait_batch(self, num_items):
        q = self._q()
        if num_items > q.qsize():
            return False, (f"Cannot get {num_items} items from queue of "
                           f"size {q.qsize()}.")
        return True, [q.get_nowait() for _ in range(num_items)]


_actor_class = {"cls": None}


def _queue_actor():
    if _actor_class["cls"] is None:
        _actor_class["cls"] = ActorClass(_QueueActor, {})
    return _actor_class["cls"]


def _checked_timeout(timeout):
    if timeout is not None and (not isinstance(timeout, (int, float)) or
                                timeout < 0):
        raise ValueError("'timeout' must be a non-negative number")
    return timeout


def _unwrap(answer, error):
    ok, result = answer
    if not ok:
        raise error(result)
    return result


class Queue:
    def __init__(self, maxsize=0, actor_options=None):
        worker.check_connected()
        if not isinstance(maxsize, int):
            raise TypeError("maxsize must be an int")
        self.maxsize = maxsize
        options = dict(actor_options or {})
        self.actor = _queue_actor().options(**options).remote(maxsize)

    def __len__(self):
        return self.size()

    def size(self):
        """The number of items in the queue."""
        return worker.get(self.actor.qsize.remote())

    qsize = size

    def empty(self):
        return worker.get(self.actor.empty.remote())

    def full(self):
        return worker.get(self.actor.full.remote())

    def put(self, item, block=True, timeout=None):
        """Adds an item. With block, waits (up to `timeout` seconds, None:
        for ever) for room, else raises Full at once when there is none."""
        if not block:
            return self.put_nowait(item)
        answer = worker.get(self.actor.put.remote(
            item, _checked_timeout(timeout)))
        _unwrap(answer, Full)

    async def put_async(self, item, block=True, timeout=None):
        if not block:
            _unwrap(await self.actor.put_nowait.remote(item), Full)
            return
        _unwrap(await self.actor.put.remote(item, _checked_timeout(timeout)),
                Full)

    def get(self, block=True, timeout=None):
        """Takes the oldest item. With block, waits (up to `timeout`
        seconds, None: for ever) for one, else raises Empty at once."""
        if not block:
            return self.get_nowait()
        answer = worker.get(self.actor.get.remote(_checked_timeout(timeout)))
        return _unwrap(answer, Empty)

    async def get_async(self, block=True, timeout=None):
        if not block:
            return _unwrap(await self.actor.get_nowait.remote(), Empty)
        return _unwrap(await self.actor.get.remote(_checked_timeout(timeout)),
                       Empty)

    def put_nowait(self, item):
        _unwrap(worker.get(self.actor.put_nowait.remote(item)), Full)

    def put_nowait_batch(self, items):
        """Adds all the items, or none (Full) when they do not fit."""
        if not isinstance(items, Iterable):
            raise TypeError("Argument 'items' must be an Iterable")
        answer = worker.get(self.actor.put_nowait_batch.remote(list(items)))
        _unwrap(answer, Full)

    def get_nowait(self):
        return _unwrap(worker.get(self.actor.get_nowait.remote()), Empty)

    def get_nowait_batch(self, num_items):
        """The `num_items` oldest items, or Empty when fewer are queued."""
        if not isinstance(num_items, int):
            raise TypeError("Argument 'num_items' must be an int")
        if num_items < 0:
            raise ValueError("'num_items' must be nonnegative")
        answer = worker.get(self.actor.get_nowait_batch.remote(num_items))
        return _unwrap(answer, Empty)

    def shutdown(self, force=False, grace_period_s=5):
        """Stops the queue's actor; its items are gone. Loom stops it at
        once either way (force and grace_period_s are accepted for Ray's
        signature)."""
        if self.actor is not None:
            kill(self.actor)
        self.actor = None
