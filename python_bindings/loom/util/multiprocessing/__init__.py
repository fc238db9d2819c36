"""multiprocessing.Pool's API over Loom actors: `from
loom.util.multiprocessing import Pool`."""
from multiprocessing import TimeoutError  # noqa: F401 - as Ray exports it

from loom.util.multiprocessing.pool import AsyncResult, Pool  # noqa: F401
