"""Python functions and an actor class that a C++ driver calls
(tests/cross_language/driver.cc, through loom/cross_language.h)."""
import numpy as np

import loom


def add(a, b):
    return a + b


def types_of(*values):
    """Each argument's Python type name, keyed by position."""
    return {str(i): type(v).__name__ for i, v in enumerate(values)}


def total(array):
    assert isinstance(array, np.ndarray), type(array)
    return float(array.sum())


def make_array(rows, cols):
    return np.arange(rows * cols, dtype=np.float32).reshape(rows, cols)


def fail(why):
    raise ValueError(why)


@loom.remote
class Counter:
    def __init__(self, start):
        self.n = start

    def incr(self, by):
        self.n += by
        return self.n
