"""The exceptions Loom raises in Python.

A task's own exception re-raises in the caller as a ``TaskError`` subclass
that is also an instance of the original exception's type, with the remote
traceback in its message and the original's attributes::

    try:
        loom.get(ref)
    except ValueError as e:          # the task raised ValueError
        assert isinstance(e, loom.exceptions.TaskError)

The same holds through nested tasks: a task that lets the error of a task
it called propagate re-raises, in its caller, as an instance of the
original type (``cause`` is the original exception; the message holds both
tracebacks).

It is a plain ``TaskError`` (``cause`` None, the traceback still in the
message) when the caller cannot rebuild the exception: its class does not
import here, or it does not pickle.
"""


class LoomError(Exception):
    """Base class of every Loom error."""


class TaskError(LoomError):
    """A task's code raised. ``cause`` is the original exception (when it
    could be unpickled), ``function_name`` the task's name and
    ``traceback_str`` the remote traceback."""

    def __init__(self, function_name, traceback_str, cause=None, pid=None):
        self.function_name = function_name
        self.traceback_str = traceback_str
        self.cause = cause
        self.pid = pid
        super().__init__(self._message())

    def _message(self):
        return f"{self.function_name} failed:\n{self.traceback_str}"

    def __str__(self):
        return self._message()

    def __reduce__(self):
        return (_rebuild_task_error,
                (self.function_name, self.traceback_str, self.cause, self.pid))

    def as_instanceof_cause(self):
        """This error as an instance of both TaskError and the cause's
        type (plain TaskError when the two cannot be combined). A cause
        that is itself a TaskError (a task re-raised what a task it called
        raised) gives way to the original exception, so that its type holds
        through every level of nesting."""
        while isinstance(self.cause, TaskError) and \
                self.cause.cause is not None:
            self.cause = self.cause.cause
        cause_cls = type(self.cause) if self.cause is not None else None
        if cause_cls is None or issubclass(cause_cls, TaskError) or \
                not issubclass(cause_cls, Exception):
            return self
        try:
            cls = _dual_classes.get(cause_cls)
            if cls is None:
                cls = type(f"TaskError({cause_cls.__name__})",
                           (TaskError, cause_cls), {
                               "__init__": _dual_init,
                               "__str__": TaskError.__str__,
                               "__reduce__": TaskError.__reduce__,
                               "__getattr__": _cause_attribute,
                           })
                cls.__module__ = __name__
                _dual_classes[cause_cls] = cls
            err = cls.__new__(cls)
            _dual_init(err, self.function_name, self.traceback_str,
                       self.cause, self.pid)
            return err
        except TypeError:  # incompatible layouts (some C exception types)
            return self


_dual_classes = {}


def _dual_init(self, function_name, traceback_str, cause=None, pid=None):
    self.function_name = function_name
    self.traceback_str = traceback_str
    self.cause = cause
    self.pid = pid
    self.args = (TaskError._message(self),)


def _cause_attribute(self, name):
    # Attributes the dual instance lacks are the cause's (e.code of the
    # user's exception), as in Ray.
    cause = self.__dict__.get("cause")
    if cause is None or name.startswith("__"):
        raise AttributeError(name)
    return getattr(cause, name)


def _rebuild_task_error(function_name, traceback_str, cause, pid):
    return TaskError(function_name, traceback_str, cause, pid) \
        .as_instanceof_cause()


class WorkerCrashedError(LoomError):
    """The worker running the task died and its retries are used up."""


class ActorDiedError(LoomError):
    """The actor is dead (killed, or out of restarts); the message says
    why."""


class GetTimeoutError(LoomError, TimeoutError):
    """``loom.get`` ran past its timeout."""


class ObjectStoreFullError(LoomError):
    """The node's object store cannot hold the value."""


class OwnerDiedError(LoomError):
    """The process that owned the object is gone."""


class TaskCancelledError(LoomError):
    """``loom.cancel`` stopped the task."""


class InfeasibleError(LoomError):
    """No node in the cluster can ever satisfy the task's demand."""


class PendingCallsLimitExceededError(LoomError):
    """The caller has max_pending_calls calls to the actor unanswered."""


class ObjectLostError(LoomError):
    """The object cannot be read: every copy is gone and it cannot be
    rebuilt (the message says why), or it is not a Loom object."""


class OutOfMemoryError(LoomError):
    """The node ran short of memory and its memory monitor killed the
    worker running the task (the message names the task, the node and the
    memory figures)."""


class RuntimeEnvSetupError(LoomError):
    """A task's or actor's runtime_env could not be set up on its node (a
    package failed to install or to arrive); the message names the log."""
