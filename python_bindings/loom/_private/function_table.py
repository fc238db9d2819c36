"""The function table: functions and classes travel as cloudpickle in the
head's key-value store, under a key derived from their bytes, exported once
per process and loaded once per worker."""
import hashlib
import pickle
import threading
import types

from loom import _core
from loom._private import serialization

_lock = threading.Lock()
_exported = set()   # keys this process has put
_loaded = {}        # key -> (function or class, options)


def _functions(obj):
    """The plain functions of a function or class, by name."""
    if isinstance(obj, type):
        return {k: v for k, v in vars(obj).items()
                if isinstance(v, types.FunctionType)}
    if isinstance(obj, types.FunctionType):
        return {"": obj}
    return {}


def _with_filename(code, filename):
    consts = tuple(_with_filename(c, filename)
                   if isinstance(c, types.CodeType) else c
                   for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _restore_filenames(obj, files):
    # cloudpickle names the code of functions it pickles by value
    # "<dynamic-code>": put the source file back, so that remote
    # tracebacks show the failing lines (the workers share the files).
    for name, fn in _functions(obj).items():
        if name in files:
            fn.__code__ = _with_filename(fn.__code__, files[name])


class Exported:
    """(obj, options) pickled once; put in the table of each cluster this
    process joins, the first time it is used there."""

    def __init__(self, obj, options):
        files = {k: f.__code__.co_filename
                 for k, f in _functions(obj).items()}
        self.data = serialization.dumps_function(
            (obj, dict(options, _files=files)))
        self.key = "py:" + hashlib.sha1(self.data).hexdigest()
        with _lock:
            _loaded.setdefault(self.key, (obj, options))

    def ensure(self):
        """The key, after putting the function in this cluster's table."""
        with _lock:
            if self.key in _exported:
                return self.key
        _core.kv_put(self.key, self.data)
        with _lock:
            _exported.add(self.key)
        return self.key


def reset():
    """A new cluster: nothing is exported there yet."""
    with _lock:
        _exported.clear()


def load(key):
    """(function or class, options) for a key, fetched once."""
    with _lock:
        hit = _loaded.get(key)
    if hit is not None:
        return hit
    data = _core.kv_get(key)
    if data is None:
        raise RuntimeError(f"function {key} is not in the function table")
    obj, options = pickle.loads(data)
    _restore_filenames(obj, options.get("_files", {}))
    value = (obj, options)
    with _lock:
        _loaded[key] = value
    return value
