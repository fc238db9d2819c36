"""The cluster's state, as Ray's ``ray.util.state``: tasks, actors,
objects, nodes, jobs, workers and placement groups (the rows ``loom list``
prints, with the same filters), summaries, and any node's log files. All
of it comes through the head, which asks the nodes' raylets, so a driver on
one machine sees every node.

    from loom.util.state import list_tasks, get_task, summarize_tasks
    failed = list_tasks(filters=[("state", "=", "FAILED")], detail=True)
    for t in failed:
        print(t.task_id, t.name, t.error_message)
    summarize_tasks()["cluster"]["summary"]["f"]["run_p95_ms"]

    from loom.util.state import get_log, list_logs
    list_logs()                                  # {node_id: [file, ...]}
    for text in get_log(filename="raylet.log", tail=20):
        print(text, end="")
    for text in get_log(actor_id=handle._actor_id.hex(), follow=True):
        ...                                      # what the actor prints
"""
import time
import warnings

from loom import _core
from loom._private import worker


class StateRow(dict):
    """One listed thing: a dict whose keys also read as attributes
    (``t.state`` or ``t["state"]``)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


# Ray's names for some of Loom's columns, kept beside them.
_ALIASES = {"tasks": {"name": "func_or_class_name", "attempt": "attempt_number"},
            "actors": {"restarts": "num_restarts"}}
# Columns whose values stay strings (ids, names).
_TEXT = ("_id", "name", "class_name")


def _value(column, text):
    if text == "":
        return None
    if column.endswith(_TEXT) or column in ("name", "class_name"):
        return text
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _row(kind, pairs):
    row = StateRow((column, _value(column, text)) for column, text in pairs)
    for column, alias in _ALIASES.get(kind, {}).items():
        if column in row:
            row[alias] = row[column]
    return row


def _filters(filters):
    out = []
    for f in filters or []:
        if isinstance(f, str):
            key, op, value = _split_filter(f)
        elif isinstance(f, (tuple, list)) and len(f) == 3:
            key, op, value = f
        else:
            raise ValueError(f"a filter is (key, '=' or '!=', value) or "
                             f"'key=value', got {f!r}")
        if op not in ("=", "!="):
            raise ValueError(f"filter op must be '=' or '!=', got {op!r}")
        out.append((str(key), op, str(value)))
    return out


def _split_filter(text):
    if "!=" in text:
        key, value = text.split("!=", 1)
        return key.strip(), "!=", value
    if "=" in text:
        key, value = text.split("=", 1)
        return key.strip(), "=", value
    raise ValueError(f"bad filter {text!r}: expected key=value or key!=value")


def _head(address):
    if address is None:
        worker.check_connected()
        return ""
    return address


def _list(kind, address, filters, limit, detail):
    if not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive int, got {limit!r}")
    rows, total, notes = _core.list_state(_head(address), kind,
                                          _filters(filters), limit,
                                          bool(detail))
    for note in notes:
        warnings.warn(note, stacklevel=3)
    if total > len(rows):
        warnings.warn(f"{len(rows)} of {total} {kind} returned; raise limit "
                      f"for more", stacklevel=3)
    return [_row(kind, pairs) for pairs in rows]


def _get(kind, id, address):
    if not isinstance(id, str) or not id:
        raise ValueError(f"the id must be a hex str, got {id!r}")
    pairs = _core.get_state(_head(address), kind, id)
    return _row(kind, pairs) if pairs else None


def list_tasks(address=None, filters=None, limit=100, timeout=None,
               detail=False, **_):
    """The head's task records, newest first: [StateRow] with task_id,
    attempt, name, state, type, node_id, pid, error_type (detail=True: job,
    actor, worker, error_message, submitted_at and the time in each phase).
    filters: [(key, "=" or "!=", value)] or ["key=value"]."""
    return _list("tasks", address, filters, limit, detail)


def list_actors(address=None, filters=None, limit=100, timeout=None,
                detail=False, **_):
    return _list("actors", address, filters, limit, detail)


def list_objects(address=None, filters=None, limit=100, timeout=None,
                 detail=False, **_):
    """The largest objects in each node's store (size, node, primary or
    secondary copy, pinned, owner)."""
    return _list("objects", address, filters, limit, detail)


def list_nodes(address=None, filters=None, limit=100, timeout=None,
               detail=False, **_):
    return _list("nodes", address, filters, limit, detail)


def list_jobs(address=None, filters=None, limit=100, timeout=None,
              detail=False, **_):
    return _list("jobs", address, filters, limit, detail)


def list_workers(address=None, filters=None, limit=100, timeout=None,
                 detail=False, **_):
    return _list("workers", address, filters, limit, detail)


def list_placement_groups(address=None, filters=None, limit=100,
                          timeout=None, detail=False, **_):
    return _list("placement-groups", address, filters, limit, detail)


def get_task(id, address=None, timeout=None, **_):
    """The task's record (every column), or None when the head has none."""
    return _get("tasks", id, address)


def get_actor(id, address=None, timeout=None, **_):
    return _get("actors", id, address)


def get_node(id, address=None, timeout=None, **_):
    return _get("nodes", id, address)


def get_job(id, address=None, timeout=None, **_):
    return _get("jobs", id, address)


def get_worker(id, address=None, timeout=None, **_):
    return _get("workers", id, address)


def get_placement_group(id, address=None, timeout=None, **_):
    return _get("placement-groups", id, address)


def _summary(kind, address, job=""):
    rows, notes = _core.summarize_state(_head(address), kind, job or "")
    for note in notes:
        warnings.warn(note, stacklevel=3)
    return [_row(kind, pairs) for pairs in rows]


def summarize_tasks(address=None, job_id=None, timeout=None, **_):
    """Per function, in Ray's shape: {"cluster": {"summary": {name:
    {"func_or_class_name", "type", "state_counts", "run_p50_ms",
    "run_p95_ms", "run_p99_ms", "run_mean_ms", "queued_p50_ms", ...}},
    "total_tasks": N}}. The counts and percentiles cover every task the
    head heard of, also those whose records it dropped past its bound."""
    summary, total = {}, 0
    for row in _summary("tasks", address, job_id):
        counts = {state: row[state] for state in
                  ("FINISHED", "FAILED", "RUNNING", "PENDING") if row[state]}
        entry = {key: value for key, value in row.items()
                 if key not in ("FINISHED", "FAILED", "RUNNING", "PENDING",
                                "total", "name")}
        entry["func_or_class_name"] = row["name"]
        entry["state_counts"] = counts
        summary[row["name"]] = entry
        total += row["total"]
    return {"cluster": {"summary": summary, "total_tasks": total,
                        "summary_by": "func_name"}}


def summarize_actors(address=None, timeout=None, **_):
    """{"cluster": {"summary": {class: {"class_name", "state_counts"}},
    "total_actors": N}}."""
    summary, total = {}, 0
    for row in _summary("actors", address):
        counts = {state: row[state] for state in
                  ("ALIVE", "PENDING", "RESTARTING", "DEAD") if row[state]}
        summary[row["class_name"]] = {"class_name": row["class_name"],
                                      "state_counts": counts}
        total += row["total"]
    return {"cluster": {"summary": summary, "total_actors": total}}


def summarize_objects(address=None, timeout=None, **_):
    """Per node: objects in its store, bytes used and capacity, pinned,
    spilled objects and bytes."""
    return {"cluster": {"summary": {row["node_id"]: row for row in
                                    _summary("objects", address)}}}


def list_logs(node_id=None):
    """{node id (hex): [file names]} of every alive node, or of one."""
    worker.check_connected()
    if node_id is not None and not isinstance(node_id, str):
        raise TypeError("node_id must be a hex str")
    listing = _core.list_logs(node_id or "")
    return {node: [name for name, _ in files]
            for node, files in listing.items()}


def get_log(filename=None, *, node_id=None, node_ip=None, actor_id=None,
            task_id=None, worker_id=None, pid=None, tail=1000, follow=False,
            poll_interval_s=0.5):
    """Yields the text of a log file (`filename` on the node named, else
    the only node that has it) or what a worker process printed (`pid` on
    the node named, an actor's process, the one that ran task_id, or
    worker_id's), in chunks of whole lines for a
    process: its last `tail` lines (-1: all), then, with follow=True, what
    is appended, until the caller stops iterating."""
    worker.check_connected()
    if filename is None and pid is None and actor_id is None and \
            task_id is None and worker_id is None:
        raise ValueError("get_log needs a filename, a pid, an actor_id, a "
                         "task_id or a worker_id")
    for name, value in (("task_id", task_id), ("worker_id", worker_id)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a hex str, got {value!r}")
    if pid is not None and (not isinstance(pid, int) or pid <= 0):
        raise ValueError(f"pid must be a positive int, got {pid!r}")
    if not isinstance(tail, int) or tail < -1:
        raise ValueError(f"tail must be an int >= -1, got {tail!r}")
    if not isinstance(actor_id, (str, type(None))):
        actor_id = getattr(actor_id, "_actor_id", actor_id)
        actor_id = actor_id.hex() if isinstance(actor_id, bytes) else actor_id
    stream = _core.open_log(filename or "", node_id or "", node_ip or "",
                            actor_id or "", task_id or "", worker_id or "",
                            pid or 0, tail, bool(follow))
    while not stream.done():
        text = stream.next()
        if text:
            yield text.decode(errors="replace")
        if stream.caught_up() and not stream.done():
            time.sleep(poll_interval_s)
