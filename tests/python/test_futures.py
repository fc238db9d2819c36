# tests/python/test_futures.py
#
# ObjectRefs as futures: ref.future() (concurrent.futures), `await ref` and
# asyncio.wrap_future from asyncio code in the driver, completion
# callbacks, errors, many refs on one waiting thread, futures inside a
# task, and loom.shutdown() failing what is still pending.

import asyncio
import concurrent.futures
import threading
import time

import pytest

import loom
from loom.exceptions import LoomError


@loom.remote
def slow(x, delay):
    time.sleep(delay)
    return x


@loom.remote
def boom():
    raise KeyError("missing")


@loom.remote
def sum_by_futures(refs):
    # In a worker: futures of refs owned by the driver.
    futs = [r.future() for r in refs["refs"]]
    return sum(f.result(timeout=60) for f in futs)


def futures_threads():
    return [t for t in threading.enumerate() if t.name == "loom-ref-futures"]


def test_future_result_and_callback(loom_cluster):
    ref = slow.remote(5, 0.5)
    fut = ref.future()
    assert isinstance(fut, concurrent.futures.Future)
    assert not fut.done()
    called = threading.Event()
    seen = []
    fut.add_done_callback(lambda f: (seen.append(f.result()), called.set()))
    assert fut.result(timeout=60) == 5
    assert called.wait(10) and seen == [5]
    # A ref that is ready already (a put) completes at once.
    assert loom.put("here").future().result(timeout=10) == "here"


def test_future_error_keeps_its_type(loom_cluster):
    fut = boom.remote().future()
    with pytest.raises(KeyError, match="missing"):
        fut.result(timeout=60)
    assert isinstance(fut.exception(), KeyError)


def test_await_and_wrap_future_in_asyncio(loom_cluster):
    async def main():
        a = await slow.remote(1, 0.2)
        b = await asyncio.wrap_future(slow.remote(2, 0.2).future())
        c = await slow.remote(3, 0.2).as_future()
        # Many refs at once, gathered while the loop stays free.
        ticks = 0
        refs = [slow.remote(i, 0.3) for i in range(40)]
        gathered = asyncio.gather(*refs)
        while not gathered.done():
            ticks += 1
            await asyncio.sleep(0.01)
        with pytest.raises(KeyError):
            await boom.remote()
        return a, b, c, await gathered, ticks

    a, b, c, many, ticks = asyncio.run(main())
    assert (a, b, c) == (1, 2, 3)
    assert many == list(range(40))
    assert ticks > 5                           # the loop never blocked


def test_on_completed_gets_the_value_or_the_error(loom_cluster):
    got = []
    done = threading.Event()

    def cb(v):
        got.append(v)
        if len(got) == 2:
            done.set()

    slow.remote(7, 0.2)._on_completed(cb)
    boom.remote()._on_completed(cb)
    assert done.wait(60)
    values = [g for g in got if not isinstance(g, BaseException)]
    errors = [g for g in got if isinstance(g, BaseException)]
    assert values == [7] and isinstance(errors[0], KeyError)


def test_many_refs_share_one_thread(loom_cluster):
    refs = [slow.remote(i, 0.0) for i in range(300)]
    futs = [r.future() for r in refs]
    done, not_done = concurrent.futures.wait(futs, timeout=60)
    assert not not_done
    assert sorted(f.result() for f in done) == list(range(300))
    assert len(futures_threads()) == 1


def test_futures_inside_a_task(loom_cluster):
    refs = [slow.remote(i, 0.1) for i in range(5)]
    assert loom.get(sum_by_futures.remote({"refs": refs}), timeout=60) == 10


def test_shutdown_fails_pending_futures(new_cluster):
    new_cluster(num_cpus=1)
    fut = slow.remote(1, 60).future()
    time.sleep(0.2)
    loom.shutdown()
    with pytest.raises(LoomError):
        fut.result(timeout=30)

