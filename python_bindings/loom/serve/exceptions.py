"""loom.serve's errors (Ray Serve's names where Ray has one)."""
from loom.exceptions import LoomError


class BackPressureError(LoomError):
    """The deployment's queue is full (max_queued_requests): retry later.
    Over HTTP this is a 503 with Retry-After."""


class DeadlineExceededError(LoomError):
    """The request's deadline cannot be met: refused at once, before it
    waited for nothing. Over HTTP this is a 504."""


class ReplicaDiedError(LoomError):
    """The replica running the request died, and the request was not safe
    to run again (not idempotent). Over HTTP this is a 502."""


class DeploymentUnavailableError(LoomError):
    """No such deployment (deleted, or never deployed). HTTP: 404."""


class RayServeException(LoomError):
    """A deployment, application or API call was refused (Ray's name)."""


class BadRequestError(LoomError, ValueError):
    """The request cannot be read (a body that is not JSON when JSON was
    asked for): the client's fault, HTTP 400. Raise it from a deployment
    to answer 400 with its message."""
