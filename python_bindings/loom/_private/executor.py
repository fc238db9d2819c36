"""A Python worker: its fork server, its main loop, and how it runs the
tasks the core worker hands it.

Sync tasks and methods run on the core worker's execution threads (one, or
max_concurrency for a threaded actor), holding the GIL while in Python.
An actor with ``async def`` methods runs every method on its own event loop
thread, up to max_concurrency at once; the execution thread only schedules
them. Its plain ``def`` methods run there too, one at a time and blocking
the loop while they run (as in Ray), so that they can touch the asyncio
objects its coroutines wait on (``asyncio.Event.set()``).

Concurrency groups: an async actor holds a semaphore per group on its loop;
a threaded actor with groups runs each group's calls on a thread pool of
the group's size (the default group: max_concurrency threads), and the
execution thread only hands them over. A call's group is its method's
(@loom.method(concurrency_group=...)), or the one its name carries
("method:group", from .options(concurrency_group=...)).

exit_actor() raises ActorExit in the method: its caller gets
ActorDiedError, and the actor asks the head to stop it with no restart.
"""
import asyncio
import concurrent.futures
import ctypes
import gc
import importlib
import inspect
import os
import select
import signal
import sys
import threading
import time
import traceback

from loom import _core
from loom import exceptions
from loom._private import errors
from loom._private import function_table
from loom._private import generators
from loom._private import log_stream
from loom._private import runtime_env
from loom._private import serialization
from loom._private import worker

_actor = {"instance": None, "loop": None, "semaphore": None,
          "groups": None, "default": None, "exiting": False}
EXIT_MESSAGE = ("the actor exited on purpose: exit_actor() was called; it "
                "is not restarted")


class ActorExit(BaseException):
    """Raised by exit_actor(); not an Exception, so that a method's
    `except Exception` does not swallow it."""
_running = {}  # task id -> thread ident (sync) or concurrent future (async)
# Running task id -> refs of the tasks it submitted, cancelled with it.
_children = {}
_running_lock = threading.Lock()


class KwargsMarker:
    """The last argument of a call with keyword arguments: their names
    (their values are the arguments before it)."""

    def __init__(self, names):
        self.names = names

    def __reduce__(self):
        return KwargsMarker, (self.names,)


def _unpack_args(values):
    if values and isinstance(values[-1], KwargsMarker):
        names = values[-1].names
        n = len(names)
        positional = values[:-1 - n]
        kwargs = dict(zip(names, values[-1 - n:-1]))
        return positional, kwargs
    return values, {}


def _arguments(args):
    """(positional, keyword) values of a task's serialized arguments."""
    with serialization.borrows():
        values = [serialization.deserialize(a) for a in args]
    return _unpack_args(values)


def _import(name):
    """The function or class a C++ caller names "module.name", and its
    options (a @loom.remote one's own)."""
    module, _, attr = name.rpartition(".")
    if not module:
        raise exceptions.LoomError(
            f"{name!r}: a call from C++ names a Python function or class as "
            "module.name")
    obj = getattr(importlib.import_module(module), attr)
    for inner in ("_fn", "_cls"):  # RemoteFunction, ActorClass
        if hasattr(obj, inner) and hasattr(obj, "_options"):
            return getattr(obj, inner), dict(obj._options)
    return obj, {}


def _resolve(info):
    """The callable a task runs, and the function's options."""
    if info["msgpack_values"] and not info["function_key"] and \
            (info["actor_creation"] or not info["actor_id"]):
        return _import(info["name"])
    if info["actor_creation"]:
        # The creation task's name is the class's function table key.
        return function_table.load(info["function_key"] or info["name"])
    if info["actor_id"]:
        inst = _actor["instance"]
        if inst is None:
            raise exceptions.LoomError("this worker serves no actor")
        name = info["name"].split(":")[0]
        if name == "__loom_ready__":
            return (lambda: True), {}
        return getattr(inst, name), {}
    return function_table.load(info["function_key"])


def _send_result(info, result, reply):
    n = info["num_returns"]
    if n == 1:
        values = [result]
    else:
        values = list(result)
    if info["msgpack_values"]:  # a C++ caller reads msgpack
        reply.set_returns([_core.msgpack_dumps(v) for v in values], [])
        return
    serialized, refs = [], []
    for v in values:
        data, buffers, inner = serialization.serialize(v)
        serialized.append((data, buffers))
        refs.extend(inner)
    reply.set_returns(serialized, refs)


def _send_error(info, exc, reply, kind=errors.TASK_ERROR):
    tb_str = "".join(traceback.format_exception(type(exc), exc,
                                                exc.__traceback__))
    tb_str = f"(pid={os.getpid()}) {tb_str}"
    reply.set_error(kind, type(exc).__name__, tb_str,
                    serialization.error_to_bytes(exc, tb_str))


def _should_retry(options, exc, attempt):
    """Whether a task that raised exc on attempt (0 first) runs again:
    retry_exceptions allows it (True, or exc is of a listed type) and
    max_retries is not used up (-1: never)."""
    retry = options.get("retry_exceptions", False)
    max_retries = options.get("max_retries", 3)
    if not retry or 0 <= max_retries <= attempt:
        return False
    if retry is True:
        return True
    return isinstance(exc, tuple(retry))


def _refuse_if_exiting(info, reply):
    """True (and the call answered) when exit_actor() came before the call
    started."""
    if not (_actor["exiting"] and info["actor_id"] and
            not info["actor_creation"]):
        return False
    reply.set_error(errors.ACTOR_DIED, "ActorDiedError", EXIT_MESSAGE, b"")
    reply.finish()
    return True


def _run_sync(info, args, reply):
    if _refuse_if_exiting(info, reply):
        return
    task_id = info["task_id"]
    worker.task_context.task_id = task_id
    with _running_lock:
        _running[task_id] = threading.get_ident()
    try:
        fn, options = _resolve(info)
        positional, kwargs = _arguments(args)
        attempt = 0
        while True:
            try:
                result = fn(*positional, **kwargs)
                if info["stream_window"]:
                    result = _stream(info, result, reply)
                break
            except Exception as e:  # noqa: BLE001 - the user's error
                if not _should_retry(options, e, attempt):
                    raise
                attempt += 1
        if info["actor_creation"]:
            _start_actor(result, options, info["actor_id"].hex())
            result = None
        _send_result(info, result, reply)
    except KeyboardInterrupt as e:
        _send_error(info, e, reply, errors.TASK_CANCELLED)
    except ActorExit:
        _send_exit(info, reply)
    except Exception as e:  # noqa: BLE001 - reported to the caller
        _send_error(info, e, reply)
    finally:
        with _running_lock:
            _running.pop(task_id, None)
            _children.pop(task_id, None)
        worker.task_context.task_id = None
    reply.finish()
    _exit_if_asked(info)


def _not_a_generator(info, result):
    return TypeError(
        f"{info['name']} was called with num_returns='streaming' or "
        f"'dynamic' but returned {type(result).__name__}, not a generator")


def _report(reply, index, value):
    """Sends item `index` once there is room; False: stop producing. The
    wait is in slices, so that a cancel (KeyboardInterrupt) can end it."""
    data, buffers, inner = serialization.serialize(value)
    while not reply.stream_room(100):
        pass
    return reply.report_item(index, (data, buffers), inner)


def _stream(info, gen, reply):
    """Reports each item a generator yields; the task's return: how many
    (a DynamicObjectRefGenerator's for a dynamic call). An error the
    generator raises ends the task after the items before it."""
    if not inspect.isgenerator(gen):
        raise _not_a_generator(info, gen)
    index = 0
    try:
        for value in gen:
            if not _report(reply, index, value):
                gen.close()  # the consumer is gone
                break
            index += 1
    finally:
        reply.end_stream()
    return _stream_result(info, index)


def _stream_result(info, count):
    if info["stream_window"] == generators.DYNAMIC:
        return generators.DynamicValue(info["task_id"], count)
    return count


async def _stream_async(info, gen, reply):
    """_stream on an async actor's loop: an async generator, or a plain
    one (run on the loop, as its plain methods are); the waits for room
    run off the loop."""
    loop = asyncio.get_running_loop()

    async def report(index, value):
        if info["msgpack_values"]:  # a C++ caller reads msgpack items
            item, inner = _core.msgpack_dumps(value), []
        else:
            data, buffers, inner = serialization.serialize(value)
            item = (data, buffers)
        while not await loop.run_in_executor(None, reply.stream_room, 100):
            pass
        return await loop.run_in_executor(None, reply.report_item, index,
                                          item, inner)

    index = 0
    try:
        if inspect.isasyncgen(gen):
            async for value in gen:
                if not await report(index, value):
                    await gen.aclose()
                    break
                index += 1
        elif inspect.isgenerator(gen):
            for value in gen:
                if not await report(index, value):
                    gen.close()
                    break
                index += 1
        else:
            raise _not_a_generator(info, gen)
    finally:
        await loop.run_in_executor(None, reply.end_stream)
    return _stream_result(info, index)


def _send_exit(info, reply):
    _actor["exiting"] = True
    reply.set_error(errors.ACTOR_DIED, "ActorDiedError", EXIT_MESSAGE, b"")


def _exit_if_asked(info):
    """After exit_actor()'s reply: once the calls already running have
    finished, the head stops this actor, no restart (from another thread:
    the kill waits for this process to go)."""
    if not _actor["exiting"] or _actor.get("exit_sent"):
        return
    _actor["exit_sent"] = True
    actor_id = info["actor_id"]

    def stop():
        while True:
            with _running_lock:
                if not _running:
                    break
            time.sleep(0.02)
        try:
            _core.kill_actor(actor_id, True, EXIT_MESSAGE)
        except Exception:  # noqa: BLE001 - the process goes either way
            pass
    threading.Thread(target=stop, name="loom-exit-actor",
                     daemon=True).start()


def _start_actor(instance, options, actor_id):
    _actor["instance"] = instance
    worker.actor_context["actor_id"] = actor_id
    groups = options.get("concurrency_groups") or {}
    is_async = any(inspect.iscoroutinefunction(m) or
                   inspect.isasyncgenfunction(m) for _, m in
                   inspect.getmembers(type(instance), inspect.isfunction))
    if not is_async:
        if groups:
            def pool(n, name):
                return concurrent.futures.ThreadPoolExecutor(
                    n, thread_name_prefix=f"loom-group-{name}")
            _actor["groups"] = {g: pool(n, g) for g, n in groups.items()}
            _actor["default"] = pool(options.get("max_concurrency", 1),
                                     "default")
        return
    loop = asyncio.new_event_loop()
    _actor["loop"] = loop
    threading.Thread(target=loop.run_forever, name="loom-actor-loop",
                     daemon=True).start()

    async def make_semaphores():
        return (asyncio.Semaphore(options.get("max_concurrency", 1000)),
                {g: asyncio.Semaphore(n) for g, n in groups.items()})

    _actor["semaphore"], _actor["groups"] = \
        asyncio.run_coroutine_threadsafe(make_semaphores(), loop).result()


def _group_of(info, method):
    """The group a call runs in: the one its name carries, else its
    method's; None for the default group. LookupError for an unknown one."""
    _, _, group = info["name"].partition(":")
    if not group:
        group = getattr(method, "__loom_concurrency_group__", None)
    if group is not None and group not in (_actor["groups"] or {}):
        raise LookupError(f"the actor has no concurrency group {group!r}")
    return group


def _run_async(info, method, args, reply):
    """Schedules a method of an async actor on the actor's loop (a
    coroutine is awaited, a plain method called there); replies when
    done."""
    task_id = info["task_id"]
    is_coroutine = inspect.iscoroutinefunction(method)
    group = _group_of(info, method)
    semaphore = _actor["semaphore"] if group is None else \
        _actor["groups"][group]

    async def call():
        async with semaphore:
            if _actor["exiting"]:  # it had not started
                raise ActorExit()
            worker.task_context.task_id = task_id
            positional, kwargs = _arguments(args)
            if info["stream_window"]:
                return await _stream_async(
                    info, method(*positional, **kwargs), reply)
            if is_coroutine:
                return await method(*positional, **kwargs)
            return method(*positional, **kwargs)

    async def run():
        # A cancel may come while the call waits for the semaphore, too.
        try:
            _send_result(info, await call(), reply)
        except asyncio.CancelledError as e:
            _send_error(info, e, reply, errors.TASK_CANCELLED)
        except ActorExit:
            _send_exit(info, reply)
        except Exception as e:  # noqa: BLE001 - reported to the caller
            _send_error(info, e, reply)
        finally:
            with _running_lock:
                _running.pop(task_id, None)
                _children.pop(task_id, None)
        reply.finish()
        _exit_if_asked(info)

    # Registered before run() can reach its end (which unregisters it), and
    # before cancel() can look for it.
    with _running_lock:
        _running[task_id] = asyncio.run_coroutine_threadsafe(run(),
                                                             _actor["loop"])


_visible = {"gpus": None, "thread_cap": 0}
# This worker's runtime_env, set up before its first task (once).
_env = {"done": False, "error": None, "lock": threading.Lock(),
        "session_dir": ""}


def _ensure_env():
    """Sets up the worker's runtime_env (from its fork server's environment)
    on the first task; raises the setup's error for every task after a
    failed one."""
    if not _env["done"]:
        with _env["lock"]:
            if not _env["done"]:
                try:
                    env = worker.runtime_env()
                    if env:
                        runtime_env.apply(env, _env["session_dir"])
                except Exception as e:  # noqa: BLE001 - each task reports it
                    _env["error"] = e
                _env["done"] = True
    if _env["error"] is not None:
        raise _env["error"]


def _sync_environ():
    # The core worker sets CUDA_VISIBLE_DEVICES when a lease with GPUs
    # assigns them, and the thread caps (OMP_NUM_THREADS, ...) to the
    # lease's CPUs (C setenv; it also caps the loaded BLAS and OpenMP
    # pools); Python's os.environ is a copy taken at start.
    ids = ",".join(str(i) for i in _core.gpu_ids())
    if ids != _visible["gpus"]:
        _visible["gpus"] = ids
        os.environ["CUDA_VISIBLE_DEVICES"] = ids
    cap = _core.thread_cap()
    if cap != _visible["thread_cap"]:
        _visible["thread_cap"] = cap
        if cap > 0:
            for name in _core.THREAD_CAP_VARIABLES:
                os.environ[name] = str(cap)


def execute(info, args, reply):
    """The core worker's task handler (on an execution thread)."""
    _sync_environ()
    if _refuse_if_exiting(info, reply):
        return
    try:
        _ensure_env()
    except Exception as e:  # noqa: BLE001 - the task fails with it
        _send_error(info, e, reply)
        return reply.finish()
    if info["actor_id"] and not info["actor_creation"]:
        method = getattr(_actor["instance"], info["name"].split(":")[0],
                         None)
        try:
            if _actor["loop"] is not None and callable(method):
                return _run_async(info, method, args, reply)
            if _actor["default"] is not None:  # threaded, with groups
                group = _group_of(info, method)
                pool = _actor["default"] if group is None else \
                    _actor["groups"][group]
                pool.submit(_run_sync, info, args, reply)
                return
        except LookupError as e:
            _send_error(info, e, reply)
            return reply.finish()
    _run_sync(info, args, reply)


def add_children(refs):
    """Tasks the running task submitted: cancelling it cancels them
    (loom.cancel's recursive=True). Held until the task ends."""
    parent = getattr(worker.task_context, "task_id", None)
    if parent is None:
        return
    with _running_lock:
        if parent in _running:
            _children.setdefault(parent, []).extend(refs)


def _cancel_children(refs):
    for ref in refs:
        try:
            _core.cancel(ref, False, True)
        except Exception:  # noqa: BLE001 - done or gone: nothing to cancel
            pass


def cancel(task_id, keep_children=False):
    """Interrupts a running task: KeyboardInterrupt in its thread, or the
    cancellation of its coroutine; then, unless keep_children, cancels the
    tasks it submitted (off this thread: each cancel waits for its
    submitter)."""
    with _running_lock:
        target = _running.get(task_id)
        children = _children.pop(task_id, None)
    if children and not keep_children:
        threading.Thread(target=_cancel_children, args=(children,),
                         name="loom-cancel-children", daemon=True).start()
    if target is None:
        return
    if isinstance(target, int):
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(target), ctypes.py_object(KeyboardInterrupt))
    else:
        target.cancel()


def _parse(argv):
    opts = {}
    it = iter(argv)
    for flag in it:
        opts[flag.lstrip("-").replace("-", "_")] = next(it, "")
    return opts


def worker_main(worker_id, opts):
    """A forked worker: serve tasks until told to exit or the raylet goes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    worker.mark_worker()
    session = opts.get("session_dir", "")
    _env["session_dir"] = session
    _core.start_worker(worker_id, opts["raylet_address"],
                       opts.get("host", "127.0.0.1"), session,
                       opts.get("gcs_address", ""), sys.executable,
                       list(sys.path), os.getcwd(), execute, cancel)
    sys.stdout = log_stream.WorkerStream(session, sys.__stdout__, False)
    sys.stderr = log_stream.WorkerStream(session, sys.__stderr__, True)
    _core.wait_for_exit()
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except Exception:  # noqa: BLE001
            pass
    os._exit(0)


def zygote_main(argv):
    """The fork server: imports once, then forks a worker per worker id
    the raylet writes on fd 4 (the worker's pid goes back); exits with the
    raylet (EOF on fd 3)."""
    import cloudpickle  # noqa: F401
    # What the driver imported of the heavy modules (worker.PREIMPORT):
    # imported once here, shared by every fork.
    for name in filter(None, os.environ.get("LOOM_PREIMPORT", "").split(",")):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    opts = _parse(argv)
    lifeline, control = 3, 4
    buf = b""
    # The kernel reaps the workers (none becomes a zombie): the server sleeps
    # until the raylet writes, instead of waking to reap.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    os.write(control, b"ready\n")  # imports done: forks answer at once
    while True:
        ready, _, _ = select.select([lifeline, control], [], [])
        if lifeline in ready:
            os._exit(0)
        if control not in ready:
            continue
        chunk = os.read(control, 64)
        if not chunk:
            os._exit(0)
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            # What the server holds goes out of the collector's sight: a
            # worker's full collection would otherwise write to every
            # object's header and copy the whole shared heap (+4 MiB each).
            gc.freeze()
            try:
                pid = os.fork()
            except OSError as e:  # out of processes or memory: -errno
                os.write(control, f"{-(e.errno or 1)}\n".encode())
                continue
            if pid == 0:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # user code waits
                os.close(control)
                try:
                    worker_main(line.decode(), opts)
                finally:
                    os._exit(1)
            os.write(control, f"{pid}\n".encode())
