# tests/python/test_data.py
#
# Data: numpy arrays read from the object store without a copy, buffer
# objects, refs nested in values, large arguments and returns, and values
# holding many refs.

import gc

import numpy as np
import pytest

import loom
from conftest import rss_bytes

MiB = 1 << 20


def in_store(arr):
    start, size = loom._private.store_mapping()
    address = arr.__array_interface__["data"][0]
    return start <= address and address + arr.nbytes <= start + size


@loom.remote
def make_array(n):
    return np.arange(n, dtype=np.int64)


@loom.remote
def array_stats(arr):
    return int(arr.sum()), arr.shape, str(arr.dtype)


@loom.remote
def identity(x):
    return x


@loom.remote
def get_all(holder):
    return loom.get(holder["refs"])


@pytest.mark.loom_timeout(240)
def test_get_of_a_put_array_is_zero_copy(loom_cluster):
    n = 25_000_000  # 200 MB of int64
    arr = np.arange(n, dtype=np.int64)
    ref = loom.put(arr)
    del arr
    gc.collect()

    before = rss_bytes()
    got = loom.get(ref)
    grown = rss_bytes() - before
    assert grown < 50 * MiB, f"RSS grew by {grown / MiB:.0f} MiB on get of 200 MB"

    assert isinstance(got, np.ndarray)
    assert got.shape == (n,) and got.dtype == np.int64
    assert got.flags.writeable is False
    with pytest.raises(ValueError):
        got[0] = 1
    assert in_store(got)
    assert got[0] == 0 and got[n // 2] == n // 2 and got[-1] == n - 1


@pytest.mark.loom_timeout(240)
def test_get_of_a_returned_array_is_zero_copy(loom_cluster):
    n = 25_000_000
    ref = make_array.remote(n)
    loom.wait([ref], timeout=120)

    before = rss_bytes()
    got = loom.get(ref, timeout=120)
    grown = rss_bytes() - before
    assert grown < 50 * MiB, f"RSS grew by {grown / MiB:.0f} MiB on get of 200 MB"
    assert got.flags.writeable is False
    assert in_store(got)
    assert got[-1] == n - 1
    assert int(got[::1_000_000].sum()) == sum(range(0, n, 1_000_000))


def test_array_stays_valid_after_its_ref_is_dropped(loom_cluster):
    expected = np.random.default_rng(0).random(4 * MiB // 8)
    ref = loom.put(expected)
    got = loom.get(ref)
    assert in_store(got)
    del ref
    gc.collect()
    # Churn the store: the array must keep its object pinned.
    for i in range(20):
        loom.get(loom.put(np.full(4 * MiB // 8, float(i))))
    np.testing.assert_array_equal(got, expected)


def test_small_and_odd_arrays_round_trip(loom_cluster):
    arrays = [
        np.arange(10, dtype=np.float32),  # small: inline
        np.arange(1_000_000, dtype=np.int32)[::3],  # not contiguous
        np.arange(600_000, dtype=np.float64).reshape(600, 1000).T,  # Fortran order
        np.zeros((), dtype=np.int16),  # 0-d
        np.zeros((0, 5)),  # empty
        np.array([(1, 2.5), (3, 4.5)] * 50_000, dtype=[("a", "i4"), ("b", "f8")]),
        np.array(["x", None, {"k": 1}], dtype=object),
    ]
    for original in arrays:
        for got in (loom.get(loom.put(original)), loom.get(identity.remote(original))):
            assert got.dtype == original.dtype and got.shape == original.shape
            assert got.tolist() == original.tolist()


def test_buffer_objects_round_trip(loom_cluster):
    # A bytearray comes back as a bytearray (as pickle gives it); a
    # memoryview, which pickle cannot take, comes back with its bytes.
    small = bytes(range(256)) * 4
    large = bytes(range(256)) * 8192  # 2 MiB: through the store
    for data in (small, large):
        got = loom.get(loom.put(bytearray(data)))
        assert isinstance(got, bytearray) and got == data
        got = loom.get(identity.remote(bytearray(data)))
        assert isinstance(got, bytearray) and got == data

        got = loom.get(loom.put(memoryview(data)))
        assert bytes(got) == data
        got = loom.get(identity.remote(memoryview(bytearray(data))))
        assert bytes(got) == data

        assert loom.get(loom.put(data)) == data


def test_large_arguments_and_returns(loom_cluster):
    arr = np.arange(8 * MiB, dtype=np.int64)  # 64 MiB
    assert loom.get(array_stats.remote(arr), timeout=60) == (
        int(arr.sum()), arr.shape, "int64")
    # The same through a put ref.
    assert loom.get(array_stats.remote(loom.put(arr)), timeout=60)[0] == int(arr.sum())
    # Returned from a task.
    got = loom.get(make_array.remote(8 * MiB), timeout=60)
    np.testing.assert_array_equal(got, arr)
    blob = b"\x01\x02" * (16 * MiB)
    assert loom.get(identity.remote(blob), timeout=60) == blob


def test_nested_refs_keep_their_objects_alive(loom_cluster):
    payload = np.arange(MiB, dtype=np.int64)  # in the store
    inner_small, inner_big = loom.put("small value"), loom.put(payload)
    outer = loom.put({"refs": [inner_small, inner_big]})
    del inner_small, inner_big
    gc.collect()

    value = loom.get(outer)
    del outer
    gc.collect()
    small, big = value["refs"]
    assert isinstance(small, loom.ObjectRef) and isinstance(big, loom.ObjectRef)
    assert loom.get(small) == "small value"
    np.testing.assert_array_equal(loom.get(big), payload)


@loom.remote
def make_refs(n):
    return [loom.put(np.full(64 * 1024, i)) for i in range(n)]


def test_refs_returned_by_a_task_outlive_its_return_ref(loom_cluster):
    outer = make_refs.remote(5)
    refs = loom.get(outer)
    del outer
    gc.collect()
    for i, r in enumerate(refs):
        got = loom.get(r, timeout=60)
        assert got.shape == (64 * 1024,) and (got == i).all()


def test_nested_ref_passed_to_a_task_after_the_driver_drops_it(loom_cluster):
    inner = loom.put(np.arange(100_000))
    holder = {"refs": [inner]}
    del inner
    gc.collect()
    ref = get_all.remote(holder)
    del holder
    gc.collect()
    [got] = loom.get(ref, timeout=60)
    np.testing.assert_array_equal(got, np.arange(100_000))


@pytest.mark.loom_timeout(240)
def test_put_of_a_value_holding_ten_thousand_refs(loom_cluster):
    n = 10_000
    refs = [loom.put(i) for i in range(n)]
    outer = loom.put({"refs": refs})
    del refs
    gc.collect()
    back = loom.get(outer, timeout=60)["refs"]
    assert len(back) == n
    assert loom.get(back, timeout=120) == list(range(n))
    # A task can read them too (borrowing from the driver).
    assert loom.get(get_all.remote(loom.get(outer)), timeout=120) == list(range(n))
