"""The cluster's state, as Ray's ``ray.util.state``: for now its log files.
Any node's logs are read through the head, which asks the node's raylet,
so a driver on one machine reads another's (as ``loom logs`` does).

    from loom.util.state import get_log, list_logs
    list_logs()                                  # {node_id: [file, ...]}
    for text in get_log(filename="raylet.log", tail=20):
        print(text, end="")
    for text in get_log(actor_id=handle._actor_id.hex(), follow=True):
        ...                                      # what the actor prints
"""
import time

from loom import _core
from loom._private import worker


def list_logs(node_id=None):
    """{node id (hex): [file names]} of every alive node, or of one."""
    worker.check_connected()
    if node_id is not None and not isinstance(node_id, str):
        raise TypeError("node_id must be a hex str")
    listing = _core.list_logs(node_id or "")
    return {node: [name for name, _ in files]
            for node, files in listing.items()}


def get_log(filename=None, *, node_id=None, node_ip=None, actor_id=None,
            pid=None, tail=1000, follow=False, poll_interval_s=0.5):
    """Yields the text of a log file (`filename` on the node named, else
    the only node that has it) or what a worker process printed (`pid` on
    the node named, or an actor's process), in chunks of whole lines for a
    process: its last `tail` lines (-1: all), then, with follow=True, what
    is appended, until the caller stops iterating."""
    worker.check_connected()
    if filename is None and pid is None and actor_id is None:
        raise ValueError("get_log needs a filename, a pid or an actor_id")
    if pid is not None and (not isinstance(pid, int) or pid <= 0):
        raise ValueError(f"pid must be a positive int, got {pid!r}")
    if not isinstance(tail, int) or tail < -1:
        raise ValueError(f"tail must be an int >= -1, got {tail!r}")
    if not isinstance(actor_id, (str, type(None))):
        actor_id = getattr(actor_id, "_actor_id", actor_id)
        actor_id = actor_id.hex() if isinstance(actor_id, bytes) else actor_id
    stream = _core.open_log(filename or "", node_id or "", node_ip or "",
                            actor_id or "", pid or 0, tail, bool(follow))
    while not stream.done():
        text = stream.next()
        if text:
            yield text.decode(errors="replace")
        if stream.caught_up() and not stream.done():
            time.sleep(poll_interval_s)
