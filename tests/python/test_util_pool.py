# tests/python/test_util_pool.py
#
# loom.util.multiprocessing.Pool: map and its forms, apply and AsyncResult,
# errors, close / join / terminate, the context manager, processes=,
# initializer and maxtasksperchild.

import multiprocessing
import os
import threading
import time

import pytest

import loom
from loom.exceptions import ActorDiedError
from loom.util.multiprocessing import Pool, TimeoutError as PoolTimeout

_init = {"value": None}


def square(x):
    return x * x


def add(a, b):
    return a + b


def slow_square(x):
    time.sleep(x[0])
    return x[1] * x[1]


def fail_on_three(x):
    if x == 3:
        raise ValueError("three")
    return x


def pid(_=None):
    return os.getpid()


def set_init(value):
    _init["value"] = value


def read_init(_=None):
    return _init["value"]


@pytest.fixture
def pool(loom_cluster):
    p = Pool(processes=2)
    yield p
    p.terminate()


def test_map_starmap_and_imap(pool):
    assert pool.map(square, range(20)) == [i * i for i in range(20)]
    assert pool.map(square, range(7), chunksize=3) == [i * i for i in range(7)]
    assert pool.map(square, []) == []
    assert pool.starmap(add, [(1, 2), (3, 4)]) == [3, 7]
    assert list(pool.imap(square, range(5))) == [0, 1, 4, 9, 16]
    assert list(pool.imap(square, range(5), chunksize=2)) == [0, 1, 4, 9, 16]
    # One value per actor: the slow first one comes last.
    got = list(pool.imap_unordered(slow_square, [(1.0, 2), (0.0, 3)]))
    assert got == [9, 4]


def test_imap_next_timeout(pool):
    it = pool.imap(slow_square, [(1.5, 2)])
    with pytest.raises(multiprocessing.TimeoutError):
        it.next(timeout=0.2)
    assert it.next(timeout=60) == 4
    with pytest.raises(StopIteration):
        next(it)


def test_apply_and_async_result(pool):
    assert pool.apply(add, (1, 2)) == 3
    assert pool.apply(add, (1,), {"b": 5}) == 6
    seen = []
    called = threading.Event()

    def on_done(v):
        seen.append(v)
        called.set()

    r = pool.apply_async(slow_square, ((1.0, 3),), callback=on_done)
    assert not r.ready()
    with pytest.raises(ValueError):
        r.successful()
    with pytest.raises(PoolTimeout):
        r.get(timeout=0.1)
    r.wait(timeout=0.1)
    assert not r.ready()
    assert r.get(timeout=60) == 9
    assert r.ready() and r.successful()
    assert called.wait(10) and seen == [9]
    m = pool.map_async(square, range(4))
    m.wait()
    assert m.ready() and m.get() == [0, 1, 4, 9]
    s = pool.starmap_async(add, [(1, 1)])
    assert s.get(timeout=60) == [2]


def test_errors_keep_their_type(pool):
    with pytest.raises(ValueError, match="three"):
        pool.map(fail_on_three, range(5), chunksize=1)
    errors = []
    got = threading.Event()
    r = pool.apply_async(fail_on_three, (3,),
                         error_callback=lambda e: (errors.append(e),
                                                   got.set()))
    with pytest.raises(ValueError, match="three"):
        r.get(timeout=60)
    assert not r.successful()
    assert got.wait(10) and isinstance(errors[0], ValueError)
    it = pool.imap(fail_on_three, range(5))
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="three"):
        next(it)
    assert pool.map(square, [2]) == [4]       # the pool still works


def test_processes_spreads_over_that_many_actors(loom_cluster):
    with Pool(processes=3) as p:
        pids = set(p.map(pid, range(12), chunksize=1))
        assert len(pids) == 3
    with pytest.raises(ValueError):
        Pool(processes=0)


def test_initializer_runs_in_every_actor(loom_cluster):
    with Pool(processes=2, initializer=set_init, initargs=("ready",)) as p:
        assert p.map(read_init, range(6), chunksize=1) == ["ready"] * 6


def test_maxtasksperchild_replaces_the_actor(loom_cluster):
    with Pool(processes=1, maxtasksperchild=1) as p:
        first = p.apply(pid)
        second = p.apply(pid)
        assert first != second


def test_close_join_terminate(loom_cluster):
    p = Pool(processes=2)
    with pytest.raises(ValueError, match="still running"):
        p.join()
    r = p.map_async(slow_square, [(0.5, 2), (0.5, 3)], chunksize=1)
    p.close()
    with pytest.raises(ValueError, match="not running"):
        p.map(square, [1])
    p.join()
    assert r.ready() and r.get() == [4, 9]
    p.terminate()

    p = Pool(processes=1)
    r = p.apply_async(slow_square, ((30.0, 2),))
    time.sleep(0.5)
    p.terminate()
    with pytest.raises(ActorDiedError):
        r.get(timeout=60)
    with pytest.raises(ValueError, match="not running"):
        p.apply(square, (1,))
    p.join()                                  # returns: nothing left


def test_context_manager_terminates(loom_cluster):
    with Pool(processes=1) as p:
        actor = p._actors[0]
        assert p.map(square, [3]) == [9]
    with pytest.raises(ActorDiedError):
        loom.get(actor.run_call.remote(square, (1,), {}), timeout=60)
