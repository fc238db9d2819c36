"""Values to and from Loom objects: pickle protocol 5 with out-of-band
buffers (numpy arrays and anything exposing the buffer protocol travel as
separate 64-byte aligned buffers, read back in place from shared memory),
cloudpickle for functions and classes defined in the driver.

ObjectRefs inside a value stay refs: serializing one notes it (the runtime
keeps it alive as long as the value), deserializing one makes this process
a borrower, registered with the owner once the whole value is read.
"""
import io
import pickle
import threading

import cloudpickle

from loom import _core
from loom import exceptions

FORMAT_MSGPACK = 1
FORMAT_RAW = 2
FORMAT_PICKLE5 = 3

_SIMPLE = (int, float, str, bytes, bool, type(None))
_tls = threading.local()


def _reduce_ref(ref):
    refs = getattr(_tls, "refs", None)
    if refs is not None:
        refs.append(ref)
    return _load_ref, (ref.binary(), ref.owner_address())


def _load_ref(id_bytes, owner):
    borrows = getattr(_tls, "borrows", None)
    if _core.borrow(id_bytes, owner):
        if borrows is not None:
            borrows.append((id_bytes, owner))
        else:
            _core.register_borrows([(id_bytes, owner)])
    return _core.ObjectRef(id_bytes, owner)


_core.ObjectRef.__reduce__ = _reduce_ref


def serialize(value):
    """(pickle bytes, out-of-band buffers, refs inside)."""
    if type(value) in _SIMPLE:
        return pickle.dumps(value, protocol=5), [], []
    buffers = []
    outer = getattr(_tls, "refs", None)
    refs = []
    _tls.refs = refs
    try:
        data = cloudpickle.dumps(value, protocol=5,
                                 buffer_callback=buffers.append)
    finally:
        _tls.refs = outer
    if outer is not None:
        outer.extend(refs)
    return data, [b.raw() for b in buffers], refs


class _Borrows:
    """Collects the refs deserialized inside it; registers them with their
    owners (one call per owner) when the outermost one ends."""

    def __enter__(self):
        self.outer = getattr(_tls, "borrows", None)
        if self.outer is None:
            _tls.borrows = []
        return self

    def __exit__(self, *exc):
        if self.outer is None:
            pending, _tls.borrows = _tls.borrows, None
            if pending:
                _core.register_borrows(pending)
        return False


def borrows():
    return _Borrows()


def deserialize(obj):
    """A value from (format, metadata, buffers) as _core.get returns it."""
    fmt, metadata, buffers = obj
    if fmt == FORMAT_PICKLE5:
        return pickle.loads(metadata, buffers=buffers)
    if fmt == FORMAT_MSGPACK:  # a C++ value (arrays in place)
        return _core.msgpack_loads(buffers[0])
    if fmt == FORMAT_RAW:  # a C++ Buffer (its bytes) or Tensor, in place
        return _raw(bytes(metadata), buffers[0])
    raise exceptions.LoomError(f"unknown object format {fmt}")


def _raw(metadata, buffer):
    """A C++ Tensor (metadata "tensor;DTYPE;D0,D1,...") as a numpy array
    over the store's bytes; a Buffer as a memoryview."""
    parts = metadata.decode(errors="replace").split(";")
    if len(parts) != 3 or parts[0] != "tensor":
        return buffer
    import numpy  # noqa: PLC0415 - only for C++ tensors
    shape = tuple(int(d) for d in parts[2].split(",") if d)
    return numpy.frombuffer(buffer, dtype=parts[1]).reshape(shape)


def dumps_function(obj):
    return cloudpickle.dumps(obj, protocol=5)


def _default_reduce(cls):
    """True when cls pickles as BaseException does: rebuilt by calling
    cls(*self.args), which fails for an __init__ whose parameters are not
    the args it passes up (``__init__(self, a, b)`` calling
    ``super().__init__(f"{a} {b}")``)."""
    return cls.__reduce__ is BaseException.__reduce__ and \
        cls.__reduce_ex__ is BaseException.__reduce_ex__


def _rebuild_exception(cls, args, state):
    """An exception as BaseException's pickling rebuilds it, except that
    when cls(*args) raises, the instance is made without __init__: args and
    __dict__ are set directly, so its type and attributes survive."""
    try:
        exc = cls(*args)
    except Exception:  # noqa: BLE001 - any __init__ that refuses args
        exc = cls.__new__(cls, *args)
        exc.args = args
    if state:
        exc.__dict__.update(state)
    return exc


class _ErrorPickler(cloudpickle.CloudPickler):
    def reducer_override(self, obj):
        if isinstance(obj, BaseException) and _default_reduce(type(obj)):
            return _rebuild_exception, (type(obj), obj.args,
                                        getattr(obj, "__dict__", None))
        return super().reducer_override(obj)


def error_to_bytes(exc, tb_str):
    """The pickled (exception, traceback) a failed task sends back; the
    traceback alone when the exception does not pickle."""
    for value in ((exc, tb_str), (None, tb_str)):
        out = io.BytesIO()
        try:
            _ErrorPickler(out, protocol=5).dump(value)
            return out.getvalue()
        except Exception:  # noqa: BLE001 - any unpicklable exception
            continue
    return b""
