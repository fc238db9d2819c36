# tests/python/test_util_actor_pool.py
#
# loom.util.ActorPool: ordered and unordered maps, submit / get_next with
# timeouts, the bookkeeping calls (has_next, has_free, pop_idle, push), an
# error raised by a call, and an actor of the pool dying.

import os
import time

import pytest

import loom
from loom.exceptions import ActorDiedError
from loom.util import ActorPool


@loom.remote
class Doubler:
    def double(self, v):
        return 2 * v

    def slow_double(self, v):
        delay, x = v
        time.sleep(delay)
        return 2 * x

    def fail(self, v):
        raise ValueError(f"bad value {v}")

    def die(self, v):
        os._exit(1)

    def pid(self):
        return os.getpid()


def double(a, v):
    return a.double.remote(v)


def slow_double(a, v):
    return a.slow_double.remote(v)


@pytest.fixture
def actors(loom_cluster):
    made = [Doubler.remote() for _ in range(2)]
    yield made
    for a in made:
        try:
            loom.kill(a)
        except Exception:  # noqa: BLE001 - already dead
            pass


def test_map_keeps_order_and_map_unordered_returns_all(actors):
    pool = ActorPool(actors)
    assert list(pool.map(double, range(10))) == [2 * i for i in range(10)]
    # The first value is slow: unordered returns it last.
    values = [(1.0, 0)] + [(0.0, i) for i in range(1, 6)]
    got = list(pool.map_unordered(slow_double, values))
    assert sorted(got) == [0, 2, 4, 6, 8, 10]
    assert got[-1] == 0
    assert not pool.has_next()


def test_submit_get_next_and_get_next_unordered(actors):
    pool = ActorPool(actors)
    pool.submit(slow_double, (0.8, 1))
    pool.submit(slow_double, (0.0, 2))
    pool.submit(double, 3)            # waits for a free actor
    assert not pool.has_free()
    assert pool.has_next()
    assert [pool.get_next() for _ in range(3)] == [2, 4, 6]
    with pytest.raises(StopIteration):
        pool.get_next()

    pool.submit(slow_double, (0.8, 1))
    pool.submit(slow_double, (0.0, 2))
    assert pool.get_next_unordered() == 4      # the fast one first
    assert pool.get_next_unordered() == 2
    with pytest.raises(StopIteration):
        pool.get_next_unordered()


def test_get_next_after_get_next_unordered_is_refused(actors):
    pool = ActorPool(actors)
    pool.submit(slow_double, (0.5, 1))
    pool.submit(double, 2)
    assert pool.get_next_unordered() == 4
    with pytest.raises(ValueError, match="get_next_unordered"):
        pool.get_next()
    assert pool.get_next_unordered() == 2


def test_timeouts(actors):
    pool = ActorPool(actors)
    pool.submit(slow_double, (1.5, 1))
    with pytest.raises(TimeoutError):
        pool.get_next(timeout=0.2)
    assert pool.get_next() == 2              # still there after a timeout

    pool.submit(slow_double, (1.5, 1))
    with pytest.raises(TimeoutError):
        pool.get_next_unordered(timeout=0.2)
    assert pool.get_next_unordered() == 2

    # ignore_if_timedout: the slow value is skipped, the next one follows.
    pool.submit(slow_double, (1.5, 1))
    pool.submit(double, 5)
    with pytest.raises(TimeoutError, match="ignored"):
        pool.get_next(timeout=0.2, ignore_if_timedout=True)
    assert pool.get_next() == 10
    assert not pool.has_next()


def test_has_free_pop_idle_push(actors):
    a, b = actors
    pool = ActorPool([a])
    assert pool.has_free() and not pool.has_next()
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(a)
    pool.push(b)
    pool.submit(double, 1)
    pool.submit(double, 2)
    assert not pool.has_free()
    assert pool.pop_idle() is None
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(a)                          # busy counts too
    assert sorted([pool.get_next(), pool.get_next()]) == [2, 4]
    popped = pool.pop_idle()
    assert popped in (a, b)
    assert pool.has_free()
    assert pool.pop_idle() not in (popped, None)
    assert pool.pop_idle() is None and not pool.has_free()
    pool.submit(double, 3)                    # no actor: waits
    assert pool.has_next() and not pool.has_free()
    pool.push(a)                              # takes the waiting value
    assert pool.get_next() == 6


def test_error_in_a_call_surfaces_and_the_actor_stays(actors):
    pool = ActorPool(actors[:1])
    pool.submit(lambda a, v: a.fail.remote(v), 7)
    pool.submit(double, 4)
    with pytest.raises(ValueError, match="bad value 7"):
        pool.get_next()
    assert pool.get_next() == 8
    assert pool.has_free()


def test_actor_death_surfaces_and_the_rest_keep_working(actors):
    a, b = actors
    pool = ActorPool([a, b])
    # pop() takes the last idle actor first: b gets the fatal value.
    pool.submit(lambda actor, v: actor.die.remote(v), 0)
    pool.submit(double, 1)
    for v in range(2, 6):
        pool.submit(double, v)                # queued for a free actor
    with pytest.raises(ActorDiedError):
        pool.get_next()
    # The dead actor left the pool; a runs everything else.
    assert [pool.get_next() for _ in range(5)] == [2, 4, 6, 8, 10]
    assert list(pool.map(double, [10, 11])) == [20, 22]
    assert pool.pop_idle() == a
    assert pool.pop_idle() is None


def test_every_actor_dead_fails_the_waiting_values(actors):
    pool = ActorPool(actors[:1])
    pool.submit(lambda actor, v: actor.die.remote(v), 0)
    pool.submit(double, 1)
    with pytest.raises(ActorDiedError):
        pool.get_next()
    assert pool.has_next()
    with pytest.raises(ActorDiedError, match="no actor is left"):
        pool.get_next()
    assert not pool.has_next()
