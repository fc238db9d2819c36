"""ActorPool: tasks spread over a fixed set of actors, one call per actor
at a time.

    pool = ActorPool([Worker.remote() for _ in range(4)])
    list(pool.map(lambda a, v: a.double.remote(v), [1, 2, 3]))   # [2, 4, 6]
    pool.submit(lambda a, v: a.double.remote(v), 4)
    pool.get_next()                                              # 8

As Ray's ActorPool, with one difference: an actor whose call fails with
ActorDiedError (dead for good) leaves the pool, so later values go to the
actors that remain; the error itself surfaces from get_next or
get_next_unordered for the value it was running."""
from loom import exceptions
from loom._private import worker

_TIMEOUT_MSG = "Timed out waiting for result"


def _key(future):
    return tuple(future) if isinstance(future, list) else future


def _first(future):
    return future[0] if isinstance(future, list) else future


class ActorPool:
    def __init__(self, actors):
        self._idle_actors = list(actors)
        self._future_to_actor = {}   # key -> (index, actor)
        self._index_to_future = {}   # index -> future
        self._next_task_index = 0
        self._next_return_index = 0
        self._pending_submits = []   # (fn, value) waiting for an actor

    def map(self, fn, values):
        """Runs fn(actor, value) for every value; yields the results in the
        order of `values`. Results not yet taken by earlier calls are
        dropped first."""
        self._drain()
        for v in values:
            self.submit(fn, v)
        while self.has_next():
            yield self.get_next()

    def map_unordered(self, fn, values):
        """As map, yielding each result as soon as it is ready."""
        self._drain()
        for v in values:
            self.submit(fn, v)
        while self.has_next():
            yield self.get_next_unordered()

    def _drain(self):
        while self.has_next():
            try:
                self.get_next(timeout=0, ignore_if_timedout=True)
            except TimeoutError:
                pass

    def submit(self, fn, value):
        """Schedules fn(actor, value) (which returns an ObjectRef) on an
        idle actor, or queues it until one is free."""
        if not self._idle_actors:
            self._pending_submits.append((fn, value))
            return
        actor = self._idle_actors.pop()
        future = fn(actor, value)
        self._future_to_actor[_key(future)] = (self._next_task_index, actor)
        self._index_to_future[self._next_task_index] = future
        self._next_task_index += 1

    def has_next(self):
        """Whether submitted results remain to be taken."""
        return bool(self._future_to_actor or self._pending_submits)

    def get_next(self, timeout=None, ignore_if_timedout=False):
        """The next result in submission order. Raises TimeoutError after
        `timeout` seconds; with ignore_if_timedout the timed-out value is
        skipped (its actor goes back to the pool) before raising."""
        if not self._future_to_actor:
            self._check_actors_left()
            raise StopIteration("No more results to get")
        if self._next_return_index >= self._next_task_index:
            raise ValueError("It is not allowed to call get_next() after "
                             "get_next_unordered().")
        future = self._index_to_future[self._next_return_index]
        timed_out = False
        if timeout is not None:
            ready, _ = worker.wait([_first(future)], timeout=timeout)
            if not ready:
                if not ignore_if_timedout:
                    raise TimeoutError(_TIMEOUT_MSG)
                timed_out = True
        del self._index_to_future[self._next_return_index]
        self._next_return_index += 1
        _, actor = self._future_to_actor.pop(_key(future))
        if timed_out:
            self._return_actor(actor)
            raise TimeoutError(f"{_TIMEOUT_MSG}. The task {future} has been "
                               "ignored.")
        return self._finish(future, actor)

    def get_next_unordered(self, timeout=None, ignore_if_timedout=False):
        """Any next result, the first to be ready. Raises TimeoutError
        when none is ready within `timeout` seconds."""
        if not self._future_to_actor:
            self._check_actors_left()
            raise StopIteration("No more results to get")
        firsts = {_first(f): f for f in self._index_to_future.values()}
        ready, _ = worker.wait(list(firsts), num_returns=1, timeout=timeout)
        if not ready:
            raise TimeoutError(_TIMEOUT_MSG)
        future = firsts[ready[0]]
        index, actor = self._future_to_actor.pop(_key(future))
        del self._index_to_future[index]
        self._next_return_index = max(self._next_return_index, index + 1)
        return self._finish(future, actor)

    def _finish(self, future, actor):
        """The value of a taken future; its actor goes back to the pool
        unless it died for good."""
        try:
            value = worker.get(future)
        except exceptions.ActorDiedError:
            self._start_pending()
            raise
        except BaseException:
            self._return_actor(actor)
            raise
        self._return_actor(actor)
        return value

    def _return_actor(self, actor):
        self._idle_actors.append(actor)
        self._start_pending()

    def _start_pending(self):
        while self._idle_actors and self._pending_submits:
            self.submit(*self._pending_submits.pop(0))

    def _check_actors_left(self):
        if self._pending_submits and not self._idle_actors:
            n = len(self._pending_submits)
            self._pending_submits.clear()
            raise exceptions.ActorDiedError(
                f"no actor is left in the pool: {n} submitted values were "
                "not run")

    def has_free(self):
        """Whether an actor is idle and nothing waits for one."""
        return bool(self._idle_actors) and not self._pending_submits

    def pop_idle(self):
        """Removes an idle actor from the pool and returns it (None when
        none is free)."""
        if self.has_free():
            return self._idle_actors.pop()
        return None

    def push(self, actor):
        """Adds an actor to the pool (ValueError if it is already in)."""
        busy = [a for _, a in self._future_to_actor.values()]
        if actor in self._idle_actors or actor in busy:
            raise ValueError("Actor already belongs to current ActorPool")
        self._return_actor(actor)
