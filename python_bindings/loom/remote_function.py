"""@loom.remote on a function: RemoteFunction.remote(...) submits a task."""
import inspect

from loom import _core
from loom._private import errors
from loom._private import function_table
from loom._private import generators
from loom._private import options as opts
from loom._private import serialization
from loom._private import worker
from loom._private import executor
from loom._private.executor import KwargsMarker


def signature_of(fn, drop_first=False):
    """fn's signature (without its first parameter: a method's self), or
    None when Python cannot tell (a builtin, a C extension)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    if drop_first:
        params = list(sig.parameters.values())
        if not params or params[0].kind not in (
                inspect.Parameter.POSITIONAL_ONLY,
                inspect.Parameter.POSITIONAL_OR_KEYWORD):
            return None  # e.g. def m(*args): self is inside args
        sig = sig.replace(parameters=params[1:])
    return sig


def check_args(sig, what, args, kwargs):
    """TypeError at .remote() for arguments `what` cannot take, as a local
    call would raise it (not later, inside the worker)."""
    if sig is None:
        return
    try:
        sig.bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"{what}: {e}") from None


def pack_args(args, kwargs):
    """The task's arguments for the core worker, and the refs serialized
    inside them. Top-level ObjectRefs pass by reference (the task gets
    their values); everything else is serialized."""
    packed, contained = [], []

    def add(v):
        if isinstance(v, _core.ObjectRef):
            packed.append(v)
        else:
            data, buffers, refs = serialization.serialize(v)
            packed.append((data, buffers))
            contained.extend(refs)

    for a in args:
        add(a)
    if kwargs:
        for v in kwargs.values():
            add(v)
        add(KwargsMarker(tuple(kwargs)))
    return packed, contained


class RemoteFunction:
    def __init__(self, fn, options):
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            raise ValueError(
                f"@loom.remote on 'async def' {fn.__qualname__}: a remote "
                "function must be a plain 'def' (its worker runs no event "
                "loop). Run the coroutine inside one, e.g. "
                "`return asyncio.run(main())`, or make it a method of an "
                "async actor (a class with 'async def' methods).")
        self._fn = fn
        self._options = opts.validate(dict(options), opts.TASK_OPTIONS,
                                      "@loom.remote on a function")
        self._name = options.get("name") or \
            f"{fn.__module__}.{fn.__qualname__}"
        self._keys = {}  # exported (fn, options) per execution options
        self._signature = signature_of(fn)
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", "remote_function")

    def __call__(self, *args, **kwargs):
        raise TypeError(f"remote function {self._name} cannot be called "
                        "directly: use .remote()")

    def options(self, **options):
        merged = dict(self._options)
        merged.update(opts.validate(dict(options), opts.TASK_OPTIONS,
                                    ".options() on a remote function"))
        outer = self

        class _Bound:
            def remote(self, *args, **kwargs):
                return outer._submit(args, kwargs, merged)

        return _Bound()

    def remote(self, *args, **kwargs):
        return self._submit(args, kwargs, self._options)

    def _key(self, options):
        retry = options.get("retry_exceptions", False)
        run = (retry if isinstance(retry, bool) else tuple(retry),
               options.get("max_retries", 3))
        exported = self._keys.get(run)
        if exported is None:
            exported = function_table.Exported(
                self._fn, {"retry_exceptions": run[0],
                           "max_retries": run[1]})
            self._keys[run] = exported
        return exported.ensure()

    def _submit(self, args, kwargs, options):
        check_args(self._signature, f"remote function {self._name}", args,
                   kwargs)
        worker.check_connected()
        key = self._key(options)
        packed, contained = pack_args(args, kwargs)
        max_retries = options.get("max_retries", 3)
        num_returns = options.get("num_returns", 1)
        n, window = generators.window_of(options, num_returns)
        with errors.translated():
            refs = _core.submit_task(
                self._name, key, packed, opts.resources(options, 1),
                # retry_exceptions reruns in the worker; the core worker
                # retries when the worker dies.
                max_retries, n, contained, opts.strategy(options),
                # A worker runs this function at most max_calls times,
                # then exits and is replaced (0: no limit).
                options.get("max_calls") or 0, window,
                worker.packed_env(options))
        if worker.is_worker():
            executor.add_children(refs)
        return generators.wrap(refs, num_returns)
