"""Error tuples from the core worker, and its status exceptions, as
loom.exceptions."""
import pickle

from loom import exceptions

TASK_ERROR, WORKER_CRASHED, INFEASIBLE, OWNER_DIED, INVALID, \
    OBJECT_STORE_FULL, ACTOR_DIED, TASK_CANCELLED, OBJECT_LOST, \
    OUT_OF_MEMORY = range(10)

_BY_KIND = {
    WORKER_CRASHED: exceptions.WorkerCrashedError,
    INFEASIBLE: exceptions.InfeasibleError,
    OWNER_DIED: exceptions.OwnerDiedError,
    INVALID: exceptions.LoomError,
    OBJECT_STORE_FULL: exceptions.ObjectStoreFullError,
    ACTOR_DIED: exceptions.ActorDiedError,
    TASK_CANCELLED: exceptions.TaskCancelledError,
    OBJECT_LOST: exceptions.ObjectLostError,
    OUT_OF_MEMORY: exceptions.OutOfMemoryError,
}


def from_tuple(err):
    """The exception for (kind, type, message, task_name, data)."""
    kind, type_name, message, task_name, data = err
    if kind == TASK_ERROR:
        cause, tb_str = None, message
        if data:
            try:
                cause, tb_str = pickle.loads(data)
            except Exception:  # noqa: BLE001 - the cause's class is unknown here
                cause = None
        if not data and type_name:
            # A C++ exception (nothing pickled): its type name and what().
            tb_str = f"{type_name}: {message}"
        return exceptions.TaskError(task_name, tb_str, cause) \
            .as_instanceof_cause()
    cls = _BY_KIND.get(kind, exceptions.LoomError)
    text = f"{task_name}: {message}" if task_name else message
    return cls(text)


def translate(e):
    """A core worker status exception as a loom exception (or e)."""
    text = str(e)
    if isinstance(e, BufferError) and text.startswith("ObjectStoreFull: "):
        return exceptions.ObjectStoreFullError(text[len("ObjectStoreFull: "):])
    if isinstance(e, IndexError) and \
            text.startswith("PendingCallsLimitExceeded: "):
        return exceptions.PendingCallsLimitExceededError(
            text[len("PendingCallsLimitExceeded: "):])
    return e


class translated:
    """with translated(): ... raises core worker errors as loom's."""

    def __enter__(self):
        return self

    def __exit__(self, typ, value, tb):
        if value is None:
            return False
        new = translate(value)
        if new is value:
            return False
        raise new from None
