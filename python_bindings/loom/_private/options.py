"""Validating the options of @loom.remote and .options(): an option Loom
does not support raises, it is never silently ignored. As in Ray, a value
of the wrong type raises TypeError (num_cpus="2"), a value of the right
type out of range ValueError (num_cpus=-1)."""
import numbers

TASK_OPTIONS = {"num_cpus", "num_gpus", "memory", "resources", "max_retries",
                "retry_exceptions", "num_returns", "name", "max_calls",
                "scheduling_strategy", "label_selector", "runtime_env",
                "_generator_backpressure_num_objects"}
ACTOR_OPTIONS = {"num_cpus", "num_gpus", "memory", "resources", "max_restarts",
                 "max_task_retries", "max_concurrency", "max_pending_calls",
                 "name", "namespace", "lifetime", "get_if_exists",
                 "scheduling_strategy", "label_selector", "concurrency_groups",
                 "runtime_env"}
METHOD_OPTIONS = {"num_returns", "name", "concurrency_group",
                  "_generator_backpressure_num_objects"}
# num_returns may also name a generator call (see _private/generators.py).
GENERATORS = ("streaming", "dynamic")


def _number(name, v, minimum=0):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a number, got "
                        f"{type(v).__name__} {v!r}")
    if not v >= minimum:  # NaN too
        raise ValueError(f"{name} must be a number >= {minimum}, got {v!r}")


def _int(name, v, minimum):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an int, got "
                        f"{type(v).__name__} {v!r}")
    if v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {v!r}")


def _str(name, v):
    if v is not None and not isinstance(v, str):
        raise TypeError(f"{name} must be a string, got "
                        f"{type(v).__name__} {v!r}")


def validate(options, allowed, what):
    unknown = set(options) - allowed
    if unknown:
        raise TypeError(f"{what} does not support the option(s) "
                        f"{', '.join(sorted(unknown))}; supported: "
                        f"{', '.join(sorted(allowed))}")
    for k in ("num_cpus", "num_gpus", "memory"):
        if options.get(k) is not None:
            _number(k, options[k])
    if options.get("num_gpus") and options["num_gpus"] > 1 and \
            options["num_gpus"] != int(options["num_gpus"]):
        raise ValueError("num_gpus above 1 must be a whole number, got "
                         f"{options['num_gpus']}")
    res = options.get("resources")
    if res is not None:
        if not isinstance(res, dict):
            raise TypeError("resources must be a dict, got "
                            f"{type(res).__name__}")
        for k, v in res.items():
            if not isinstance(k, str):
                raise TypeError("resource names must be strings")
            if k in ("CPU", "GPU", "memory"):
                raise ValueError(f"use num_cpus / num_gpus / memory, not "
                                 f"resources={{'{k}': ...}}")
            _number(f"resources[{k!r}]", v)
    ints = options
    n = options.get("num_returns")
    if isinstance(n, str):
        if n not in GENERATORS:
            raise TypeError("num_returns must be an int >= 1, 'streaming' "
                             f"or 'dynamic', got {n!r}")
        ints = {k: v for k, v in options.items() if k != "num_returns"}
    for k, minimum in (("max_retries", -1), ("max_restarts", -1),
                       ("max_task_retries", -1), ("max_concurrency", 1),
                       ("max_pending_calls", -1), ("num_returns", 1),
                       ("max_calls", 0),
                       ("_generator_backpressure_num_objects", -1)):
        if ints.get(k) is not None:
            _int(k, ints[k], minimum)
    if "retry_exceptions" in options:
        r = options["retry_exceptions"]
        if not isinstance(r, bool) and not (
                isinstance(r, (list, tuple)) and
                all(isinstance(c, type) and issubclass(c, BaseException)
                    for c in r)):
            raise TypeError("retry_exceptions must be a bool or a list of "
                            "exception types")
    for k in ("name", "namespace", "lifetime"):
        _str(k, options.get(k))
    if options.get("lifetime") not in (None, "detached", "non_detached"):
        raise ValueError("lifetime must be 'detached' or 'non_detached'")
    groups = options.get("concurrency_groups")
    if groups is not None:
        if not isinstance(groups, dict):
            raise TypeError("concurrency_groups must be a dict of group "
                            f"name -> limit, got {type(groups).__name__}")
        for k, v in groups.items():
            if not isinstance(k, str) or not k or ":" in k:
                raise ValueError("concurrency group names must be non-empty "
                                 f"strings without ':', got {k!r}")
            _int(f"concurrency_groups[{k!r}]", v, 1)
    _str("concurrency_group", options.get("concurrency_group"))
    labels = options.get("label_selector")
    if labels is not None and not isinstance(labels, dict):
        raise TypeError("label_selector must be a dict, got "
                        f"{type(labels).__name__}")
    strategy(options)  # raises on a bad one
    if options.get("runtime_env") is not None:
        from loom._private import runtime_env
        options["runtime_env"] = runtime_env.validate(options["runtime_env"])
    return options


def resources(options, default_cpus):
    """The resource demand: {"CPU": n, "GPU": n, "memory": bytes,
    ...custom}; inside a placement group, each under the bundle's name."""
    from loom.util.scheduling_strategies import \
        PlacementGroupSchedulingStrategy
    from loom.util.placement_group import bundle_resources
    out = dict(options.get("resources") or {})
    cpus = options.get("num_cpus")
    if cpus is None:
        cpus = default_cpus
    if cpus is not None:
        out["CPU"] = float(cpus)
    if options.get("num_gpus"):
        out["GPU"] = float(options["num_gpus"])
    if options.get("memory"):
        # Bytes, rounded down to a whole number as in Ray.
        out["memory"] = float(int(options["memory"]))
    s = options.get("scheduling_strategy")
    if isinstance(s, PlacementGroupSchedulingStrategy):
        out = bundle_resources(out, s.placement_group,
                               s.placement_group_bundle_index)
    return out


def strategy(options):
    """(kind, node id hex, soft, label selector) for the core worker."""
    from loom.util.scheduling_strategies import (
        NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy)
    s = options.get("scheduling_strategy")
    labels = options.get("label_selector") or {}
    if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str)
            for k, v in labels.items()):
        raise ValueError("label_selector must map label names to strings")
    if s is None or s == "DEFAULT" or \
            isinstance(s, PlacementGroupSchedulingStrategy):
        return (0, "", False, labels)  # a group: its resources say where
    if s == "SPREAD":
        return (1, "", False, labels)
    if isinstance(s, NodeAffinitySchedulingStrategy):
        return (2, s.node_id, s.soft, labels)
    error = ValueError if isinstance(s, str) else TypeError
    raise error("scheduling_strategy must be 'DEFAULT', 'SPREAD', a "
                "PlacementGroupSchedulingStrategy or a "
                f"NodeAffinitySchedulingStrategy, got {s!r}")
