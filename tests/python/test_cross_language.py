# tests/python/test_cross_language.py
#
# Cross-language calls (docs/cross-language.md): Python calls C++ functions
# and actors registered with LOOM_REMOTE (tests/cross_language/functions.cc,
# loaded from code_search_path by C++ workers), and a C++ driver
# (tests/cross_language/driver.cc) calls Python functions and an actor of
# tests/python/xlang_module.py. Values cross as msgpack; numpy arrays as
# loom::Tensor; errors with their type name and message.

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import loom
from loom.cross_language import cpp_actor_class, cpp_function
from loom.exceptions import ActorDiedError, TaskError

from conftest import REPO_ROOT

BUILD = REPO_ROOT / "build"
LIB = BUILD / "lib" / "libloom_xlang_functions.so"
DRIVER = BUILD / "bin" / "loom-xlang-driver"


@pytest.fixture(scope="module")
def cpp_cluster():
    if not LIB.exists():
        pytest.fail(f"{LIB} is missing: build the tree first (make build)")
    if loom.is_initialized():
        loom.shutdown()
    loom.init(num_cpus=2, code_search_path=[str(LIB)])
    yield
    loom.shutdown()


def test_python_calls_cpp_functions_with_shared_values(cpp_cluster):
    assert loom.get(cpp_function("Add").remote(1, 2)) == 3
    assert loom.get(cpp_function("Greet").remote("loom")) == "hello loom"
    assert loom.get(cpp_function("Scale").remote([1.0, 2.5], 2.0)) == \
        [2.0, 5.0]
    assert loom.get(cpp_function("CountWords").remote(
        ["a", "b", "a"])) == {"a": 2, "b": 1}
    assert loom.get(cpp_function("Reverse").remote(b"\x01\x02\x03")) == \
        b"\x03\x02\x01"
    assert loom.get(cpp_function("Nested").remote("n")) == \
        ["n", [1, -2], {"ok": True}]
    # A C++ result as another C++ call's argument, by reference.
    three = cpp_function("Add").remote(1, 2)
    assert loom.get(cpp_function("Add").remote(three, 4)) == 7


def test_numpy_arrays_cross_as_tensors(cpp_cluster):
    small = np.arange(6, dtype=np.float64).reshape(2, 3)
    dtype, shape, total, _ = loom.get(cpp_function("Describe").remote(small))
    assert (dtype, shape, total) == ("float64", [2, 3], 15.0)
    # Large: the argument lives in the store and C++ reads it in place,
    # 64-byte aligned.
    big = np.full((500, 100), 0.5)
    dtype, shape, total, aligned = loom.get(
        cpp_function("Describe").remote(big))
    assert (dtype, shape, total, aligned) == ("float64", [500, 100],
                                              25000.0, True)
    # A Tensor C++ returns is a numpy array over the object's bytes.
    for rows, n in ((2, 8), (400, 400 * 300)):
        arr = loom.get(cpp_function("Iota").remote(rows, n))
        assert isinstance(arr, np.ndarray)
        assert arr.dtype == np.float32 and arr.shape == (rows, n // rows)
        assert arr[0, 0] == 0 and arr[-1, -1] == n - 1
        assert not arr.flags.writeable  # a view, not a copy
    assert arr.ctypes.data % 64 == 0


def test_cpp_errors_arrive_with_type_and_message(cpp_cluster):
    with pytest.raises(TaskError) as info:
        loom.get(cpp_function("Fail").remote("no good"))
    assert "std::invalid_argument" in str(info.value)
    assert "no good" in str(info.value)
    # Wrong arguments and unknown names are clear errors, not hangs.
    with pytest.raises(loom.exceptions.LoomError, match="deserialize"):
        loom.get(cpp_function("Add").remote("one", "two"))
    with pytest.raises(loom.exceptions.LoomError, match="NoSuchFunction"):
        loom.get(cpp_function("NoSuchFunction").remote())
    # What msgpack cannot carry is refused at the call.
    with pytest.raises(TypeError, match="cannot pass a object"):
        cpp_function("Add").remote(object(), 1)
    with pytest.raises(TypeError, match="positional"):
        cpp_function("Add").remote(a=1, b=2)


def test_python_calls_a_cpp_actor(cpp_cluster):
    counter = cpp_actor_class("MakeCounter", "Counter").remote(10)
    assert loom.get(counter.Increment.remote(5)) == 15
    # The bare method name works too: the worker finds it on the class.
    bare = cpp_actor_class("MakeCounter").remote(0)
    assert loom.get([bare.Increment.remote(2), bare.Increment.remote(3)]) \
        == [2, 5]
    assert loom.get(bare.History.remote()) == [2, 5]
    assert loom.get(counter.Get.remote()) == 15
    # A handle passed to a Python task calls the same actor.

    @loom.remote
    def bump(handle):
        return loom.get(handle.Increment.remote(100))

    assert loom.get(bump.remote(counter)) == 115
    loom.kill(counter)
    with pytest.raises(ActorDiedError):
        loom.get(counter.Get.remote())


def test_a_cpp_driver_calls_python(processes, tmp_path):
    if not DRIVER.exists():
        pytest.fail(f"{DRIVER} is missing: build the tree first (make build)")
    # Not processes.env(): the module is found through python_path alone.
    env = dict(os.environ, LOOM_SESSION_ROOT=processes.session_root,
               LOOM_TEST_MARKER=processes.marker)
    run = subprocess.run(
        [str(DRIVER), sys.executable, str(Path(__file__).parent)],
        env=env, capture_output=True, text=True, timeout=240,
        cwd=str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    out = dict(line.split("=", 1) for line in run.stdout.splitlines()
               if "=" in line)
    assert out["add"] == "42"
    assert [out[f"type.{i}"] for i in range(6)] == \
        ["int", "float", "str", "list", "dict", "bool"]
    assert out["total"] == "75000"
    assert out["array"] == "float32:300,400:0:119999"
    assert out["counter"] == "16"
    assert out["fail"] == "111"  # ValueError, its message, the traceback
    assert out["missing"] == "named"
    assert run.stdout.rstrip().endswith("done")
