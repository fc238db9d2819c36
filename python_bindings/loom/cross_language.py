"""Calling C++ from Python: functions and actors that C++ code registered
with LOOM_REMOTE, in the shared libraries named by
``loom.init(code_search_path=[...])``. They run on C++ workers.

    add = loom.cross_language.cpp_function("Add")
    loom.get(add.remote(1, 2))                      # 3
    Counter = loom.cross_language.cpp_actor_class("MakeCounter", "Counter")
    c = Counter.remote(10)
    loom.get(c.Increment.remote(5))                 # Counter::Increment

Values cross as msgpack: None, bool, int, float, str, bytes, lists (and
tuples), dicts, and numpy arrays (a C++ ``loom::Tensor``; what C++ returns
comes back as a read-only array over the object's bytes). An ObjectRef
argument is resolved to its value first, which must be a C++ value (one a
C++ task returned). A C++ exception raises TaskError with its type name and
message. C++ calls Python through loom/cross_language.h.
"""
from loom import _core
from loom._private import errors
from loom._private import options as opts
from loom._private import worker
from loom.actor import ActorHandle, core_actor_options

_CPP = ({}, "", "cpp")  # an environment of C++ workers

_TASK_OPTIONS = {"num_cpus", "num_gpus", "resources", "memory", "max_retries",
                 "scheduling_strategy", "label_selector"}
_ACTOR_OPTIONS = {"num_cpus", "num_gpus", "resources", "memory", "name",
                  "namespace", "max_restarts", "max_task_retries",
                  "max_concurrency", "max_pending_calls", "lifetime",
                  "get_if_exists", "scheduling_strategy", "label_selector"}


def _check_name(kind, name):
    if not isinstance(name, str) or not name:
        raise TypeError(f"{kind} needs the name LOOM_REMOTE registered, as a "
                        f"non-empty str, got {name!r}")


def _pack(args, kwargs, what):
    if kwargs:
        raise TypeError(f"{what} takes positional arguments only (C++ has no "
                        "keyword arguments)")
    return [a if isinstance(a, _core.ObjectRef) else _core.msgpack_dumps(a)
            for a in args]


class CppFunction:
    """A C++ function registered with LOOM_REMOTE, called by name."""

    def __init__(self, name, options=None):
        _check_name("cpp_function", name)
        self._name = name
        self._options = options or {}

    def options(self, **options):
        merged = dict(self._options)
        merged.update(opts.validate(dict(options), _TASK_OPTIONS,
                                    f".options() on C++ function {self._name}"))
        return CppFunction(self._name, merged)

    def remote(self, *args, **kwargs):
        packed = _pack(args, kwargs, f"C++ function {self._name}")
        worker.check_connected()
        o = self._options
        with errors.translated():
            refs = _core.submit_task(
                self._name, "", packed, opts.resources(o, 1),
                o.get("max_retries", 3), 1, [], opts.strategy(o), 0, 0, _CPP)
        return refs[0]

    def __repr__(self):
        return f"CppFunction({self._name})"


class CppActorClass:
    """A C++ class made an actor by its factory (a LOOM_REMOTE function
    returning a new T*)."""

    def __init__(self, factory, class_name="", options=None):
        _check_name("cpp_actor_class", factory)
        if not isinstance(class_name, str):
            raise TypeError("class_name must be a str")
        self._factory = factory
        self._class_name = class_name
        self._options = options or {}

    def options(self, **options):
        merged = dict(self._options)
        merged.update(opts.validate(
            dict(options), _ACTOR_OPTIONS,
            f".options() on C++ actor {self._factory}"))
        return CppActorClass(self._factory, self._class_name, merged)

    def remote(self, *args, **kwargs):
        packed = _pack(args, kwargs, f"C++ actor factory {self._factory}")
        worker.check_connected()
        o = self._options
        core_opts = core_actor_options(o, o.get("max_concurrency") or 1, _CPP)
        name = self._class_name or self._factory
        with errors.translated():
            actor_id, handle = _core.create_actor(
                name, self._factory, packed,
                opts.resources(o, o.get("num_cpus")), core_opts, [],
                opts.strategy(o))
        return CppActorHandle(actor_id, handle, name, self._class_name)

    def __repr__(self):
        return f"CppActorClass({self._factory})"


class CppActorMethod:
    def __init__(self, handle, name):
        self._handle = handle
        self._name = name

    def remote(self, *args, **kwargs):
        h = self._handle
        qualified = f"{h._cpp_class}::{self._name}" if h._cpp_class \
            else self._name
        packed = _pack(args, kwargs, f"C++ method {qualified}")
        worker.check_connected()
        with errors.translated():
            refs = _core.submit_actor_task(h._actor_id, qualified, packed, [],
                                           1, 0)
        return refs[0]


class CppActorHandle(ActorHandle):
    """A handle to a C++ actor: any attribute is a method, called by its
    registered name ("Class::Method", or the bare name, which the actor's
    worker looks up on the actor's class)."""

    def __init__(self, actor_id, handle_ref, class_name, cpp_class):
        super().__init__(actor_id, handle_ref, class_name, {})
        self._cpp_class = cpp_class

    def __getattr__(self, name):
        if name.startswith("__") or name.startswith("_"):
            raise AttributeError(name)
        return CppActorMethod(self, name)

    def __reduce__(self):
        return CppActorHandle, (self._actor_id, self._handle_ref,
                                self._class_name, self._cpp_class)


def cpp_function(name):
    """The C++ function LOOM_REMOTE registered as `name`."""
    return CppFunction(name)


def cpp_actor_class(factory, class_name=""):
    """The C++ actor that `factory` creates; its methods are called by name
    (``handle.Increment.remote(1)``), qualified with class_name when given
    ("Counter::Increment")."""
    return CppActorClass(factory, class_name)


__all__ = ["cpp_function", "cpp_actor_class", "CppFunction", "CppActorClass",
           "CppActorHandle"]
