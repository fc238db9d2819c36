"""@loom.remote on a class: ActorClass.remote(...) creates an actor and
returns its handle; handle.method.remote(...) calls it.

A handle carries a ref to the actor's handle object: refs to it, anywhere,
are the actor's handles, and when the last is gone the actor stops once the
calls its creator already sent are answered (named and detached actors as
in the C++ API)."""
import inspect

from loom import _core
from loom._private import errors
from loom._private import function_table
from loom._private import generators
from loom._private import options as opts
from loom._private import worker
from loom.remote_function import check_args, pack_args, signature_of


READY = "__loom_ready__"  # answers True once the constructor ran
_READY_NAMES = (READY, "__ray_ready__")


def _methods(cls):
    """name -> (is_async, num_returns, concurrency group or None) for the
    class's public methods."""
    out = {}
    for name, m in inspect.getmembers(cls, inspect.isfunction):
        if name.startswith("__") and name != "__call__":
            continue
        out[name] = (inspect.iscoroutinefunction(m) or
                     inspect.isasyncgenfunction(m),
                     getattr(m, "__loom_num_returns__", 1),
                     getattr(m, "__loom_concurrency_group__", None))
    return out


def _signatures(cls):
    """name -> signature (without self) of the class's public methods;
    static and class methods take no self."""
    out = {}
    for name, m in inspect.getmembers(cls, inspect.isfunction):
        if name.startswith("__") and name != "__call__":
            continue
        static = isinstance(inspect.getattr_static(cls, name), staticmethod)
        out[name] = signature_of(m, drop_first=not static)
    return out


def method(num_returns=1, concurrency_group=None):
    """@loom.method(num_returns=n, concurrency_group="io") on an actor
    method."""
    opts.validate({"num_returns": num_returns,
                   "concurrency_group": concurrency_group},
                  opts.METHOD_OPTIONS, "@loom.method")

    def mark(m):
        m.__loom_num_returns__ = num_returns
        if concurrency_group is not None:
            m.__loom_concurrency_group__ = concurrency_group
        return m
    return mark


def _check_groups(class_name, methods, groups):
    """ValueError for a method marked with a group the class lacks."""
    for name, (_, _, group) in methods.items():
        if group is not None and group not in groups:
            raise ValueError(
                f"method {class_name}.{name} is in concurrency group "
                f"{group!r}, which the actor does not declare (its "
                f"concurrency_groups: {sorted(groups)})")


def core_actor_options(options, max_concurrency, env):
    """The core worker's options for creating an actor with these options,
    running its calls on max_concurrency threads in workers of env."""
    ns = options.get("namespace")
    if ns is None:
        ns = worker.namespace() or ""
    return {
        "name": options.get("name") or "",
        "namespace": ns,
        "max_restarts": options.get("max_restarts", 0),
        "max_task_retries": options.get("max_task_retries", 0),
        "max_concurrency": max_concurrency,
        "max_pending_calls": max(0, options.get("max_pending_calls", -1)),
        "detached": options.get("lifetime") == "detached",
        "get_if_exists": bool(options.get("get_if_exists", False)),
        "env": env,
    }


class ActorClass:
    def __init__(self, cls, options):
        self._cls = cls
        self._options = opts.validate(dict(options), opts.ACTOR_OPTIONS,
                                      "@loom.remote on a class")
        self._methods = _methods(cls)
        self._signatures = _signatures(cls)
        self._init_signature = signature_of(cls.__init__, drop_first=True) \
            if cls.__init__ is not object.__init__ else inspect.Signature()
        self._is_async = any(m[0] for m in self._methods.values())
        self._name = f"{cls.__module__}.{cls.__qualname__}"
        self._keys = {}
        self.__doc__ = cls.__doc__
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__module__ = cls.__module__

    def __getattr__(self, name):
        # The user's class shows through: class attributes, class and
        # static methods (MyActor.VERSION, MyActor.from_config(...)).
        if name.startswith("__") or "_cls" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["_cls"], name)

    def __dir__(self):
        return sorted(set(dir(type(self))) | set(self.__dict__) |
                      set(dir(self._cls)))

    def __call__(self, *args, **kwargs):
        raise TypeError(f"actor class {self._name} cannot be instantiated "
                        "directly: use .remote()")

    def __mro_entries__(self, bases):
        # `class B(A)` where A is an actor class (what @loom.remote made).
        cls = self._cls.__qualname__
        raise TypeError(
            f"cannot subclass the actor class {self._name}: subclass the "
            f"original class instead and make the subclass an actor. Keep "
            f"the undecorated class (class {cls}: ...; {cls}Actor = "
            f"loom.remote({cls})), write `class Sub({cls})`, then "
            f"loom.remote(Sub).")

    def options(self, **options):
        merged = dict(self._options)
        merged.update(opts.validate(dict(options), opts.ACTOR_OPTIONS,
                                    ".options() on an actor class"))
        outer = self

        class _Bound:
            def remote(self, *args, **kwargs):
                return outer._create(args, kwargs, merged)

        return _Bound()

    def remote(self, *args, **kwargs):
        return self._create(args, kwargs, self._options)

    def _create(self, args, kwargs, options):
        check_args(self._init_signature, f"actor class {self._name}", args,
                   kwargs)
        worker.check_connected()
        default_concurrency = 1000 if self._is_async else 1
        concurrency = options.get("max_concurrency") or default_concurrency
        groups = dict(options.get("concurrency_groups") or {})
        _check_groups(self._name, self._methods, groups)
        cache_key = (concurrency, tuple(sorted(groups.items())))
        exported = self._keys.get(cache_key)
        if exported is None:
            exported = function_table.Exported(
                self._cls, {"max_concurrency": concurrency,
                            "concurrency_groups": groups})
            self._keys[cache_key] = exported
        key = exported.ensure()
        packed, contained = pack_args(args, kwargs)
        # Async actors interleave on their event loop (Python counts
        # max_concurrency); threaded ones run on that many threads, or, with
        # concurrency groups, on a Python pool per group.
        core_opts = core_actor_options(
            options, 1 if self._is_async or groups else concurrency,
            worker.packed_env(options))
        res = opts.resources(options, options.get("num_cpus"))
        with errors.translated():
            actor_id, handle = _core.create_actor(
                self._name, key, packed, res, core_opts, contained,
                opts.strategy(options))
        h = ActorHandle(actor_id, handle, self._name, self._methods)
        h._groups = groups  # this process's copy only
        h._signatures = self._signatures  # this process's copy only
        return h


class ActorMethod:
    def __init__(self, handle, name, num_returns, group=None, window=None):
        self._handle = handle
        self._name = name
        self._num_returns = num_returns
        self._group = group  # None: the method's own (or the default)
        self._window = window  # _generator_backpressure_num_objects

    def __call__(self, *args, **kwargs):
        raise TypeError(f"actor method {self._name} cannot be called "
                        "directly: use .remote()")

    def options(self, **options):
        opts.validate(dict(options), opts.METHOD_OPTIONS,
                      ".options() on an actor method")
        n = options.get("num_returns", self._num_returns)
        group = options.get("concurrency_group", self._group)
        known = self._handle.__dict__.get("_groups")
        if group is not None and known is not None and group not in known:
            raise ValueError(f"no concurrency group {group!r} on this actor "
                             f"(its groups: {sorted(known)})")
        window = options.get("_generator_backpressure_num_objects",
                             self._window)
        return ActorMethod(self._handle, self._name, n, group, window)

    def remote(self, *args, **kwargs):
        # The worker reads a call's group from its name: "method:group".
        name = self._name if self._group is None else \
            f"{self._name}:{self._group}"
        return self._handle._call(name, args, kwargs, self._num_returns,
                                  self._window)


class ActorHandle:
    def __init__(self, actor_id, handle_ref, class_name, methods):
        self._actor_id = actor_id
        self._handle_ref = handle_ref  # None: detached
        self._class_name = class_name
        self._methods = methods

    def __getattr__(self, name):
        methods = self.__dict__.get("_methods", {})
        if name in methods:
            return ActorMethod(self, name, methods[name][1])
        if name in _READY_NAMES:
            return ActorMethod(self, READY, 1)
        raise AttributeError(f"actor {self.__dict__.get('_class_name')} has "
                             f"no method {name!r}")

    def _call(self, name, args, kwargs, num_returns, window=None):
        sigs = self.__dict__.get("_signatures")
        if sigs:
            check_args(sigs.get(name.split(":")[0]),
                       f"actor method {self._class_name}."
                       f"{name}", args, kwargs)
        worker.check_connected()
        packed, contained = pack_args(args, kwargs)
        n, stream_window = generators.window_of(
            {"_generator_backpressure_num_objects": window}, num_returns)
        with errors.translated():
            refs = _core.submit_actor_task(self._actor_id, name, packed,
                                           contained, n, stream_window)
        return generators.wrap(refs, num_returns)

    def __reduce__(self):
        return ActorHandle, (self._actor_id, self._handle_ref,
                             self._class_name, self._methods)

    def __repr__(self):
        return f"Actor({self._class_name}, {self._actor_id.hex()})"

    def __eq__(self, other):
        return isinstance(other, ActorHandle) and \
            other._actor_id == self._actor_id

    def __hash__(self):
        return hash(self._actor_id)


def get_actor(name, namespace=None):
    worker.check_connected()
    if not isinstance(name, str) or not name:
        raise ValueError("get_actor() needs the actor's name")
    ns = namespace if namespace is not None else (worker.namespace() or "")
    try:
        actor_id, handle = _core.get_named_actor(name, ns)
    except KeyError as e:
        raise ValueError(f"no actor named {name!r} in namespace {ns!r}: "
                         f"{e.args[0] if e.args else ''}") from None
    # The class's methods are not known here: any name is callable.
    return _NamedActorHandle(actor_id, handle, name)


class _NamedActorHandle(ActorHandle):
    def __init__(self, actor_id, handle_ref, name, methods=None):
        super().__init__(actor_id, handle_ref, name, methods or {})

    def __getattr__(self, name):
        if name in _READY_NAMES:
            return ActorMethod(self, READY, 1)
        if name.startswith("__"):
            raise AttributeError(name)
        methods = self.__dict__.get("_methods", {})
        return ActorMethod(self, name, methods.get(name, (False, 1))[1])

    def __reduce__(self):
        return _NamedActorHandle, (self._actor_id, self._handle_ref,
                                   self._class_name, self._methods)


def kill(actor, *, no_restart=True):
    worker.check_connected()
    if not isinstance(actor, ActorHandle):
        raise TypeError("loom.kill() takes an actor handle")
    with errors.translated():
        _core.kill_actor(actor._actor_id, bool(no_restart),
                         "killed by loom.kill()")


def exit_actor():
    """Inside an actor method: ends the actor on purpose. The call that
    made it fails with ActorDiedError for its caller, later calls too, and
    the actor is not restarted (whatever its max_restarts)."""
    from loom._private import executor
    if not worker.actor_context.get("actor_id"):
        raise TypeError("exit_actor() can only be called inside an actor")
    raise executor.ActorExit()
