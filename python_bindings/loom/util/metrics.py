"""Metrics from your code, as Ray's ``ray.util.metrics``: counters, gauges
and histograms, exported in Prometheus' format on the ``/metrics`` of the
raylet of the node the code runs on (the head lists every endpoint in its
Prometheus discovery file; see docs/observability.md).

    from loom.util.metrics import Counter, Gauge, Histogram
    requests = Counter("requests", description="Requests served",
                       tag_keys=("route",))
    requests.inc(tags={"route": "/predict"})
    latency = Histogram("latency_s", boundaries=[0.01, 0.1, 1],
                        tag_keys=("route",))
    latency.set_default_tags({"route": "/predict"})
    latency.observe(0.042)

Each process sends what changed about once a second (and at shutdown).
Names are exported as given; names under ``loom_`` are Loom's own. A bad
name, tag or value raises ValueError.
"""
from loom import _core

__all__ = ["Counter", "Gauge", "Histogram"]


class Metric:
    """What the three kinds share: a name, tag keys and default tags."""

    _kind = None

    def __init__(self, name, description="", tag_keys=None, boundaries=(),
                 _own=False):
        if not isinstance(name, str) or not name:
            raise ValueError("a metric needs a non-empty name")
        if tag_keys is None:
            tag_keys = ()
        if isinstance(tag_keys, str) or not all(
                isinstance(k, str) for k in tag_keys):
            raise TypeError("tag_keys must be a tuple of strings")
        self._name = name
        self._description = description or ""
        self._tag_keys = tuple(tag_keys)
        self._default_tags = {}
        self._id = _core.metric_define(name, self._description, self._kind,
                                       [float(b) for b in boundaries],
                                       list(self._tag_keys), own=_own)

    @property
    def info(self):
        return {"name": self._name, "description": self._description,
                "tag_keys": self._tag_keys,
                "default_tags": dict(self._default_tags)}

    def set_default_tags(self, default_tags):
        """Tags used where a call does not give them."""
        for key in default_tags:
            if key not in self._tag_keys:
                raise ValueError(f"metric {self._name} has no tag key "
                                 f"{key!r} (tag_keys: {self._tag_keys})")
        self._default_tags = {k: str(v) for k, v in default_tags.items()}
        return self

    def _record(self, value, tags):
        labels = dict(self._default_tags)
        if tags:
            labels.update({k: str(v) for k, v in tags.items()})
        missing = [k for k in self._tag_keys if k not in labels]
        if missing:
            raise ValueError(f"metric {self._name}: no value for tag keys "
                             f"{missing} (give them in tags= or "
                             "set_default_tags)")
        _core.metric_record(self._id, labels, float(value))


class Counter(Metric):
    """A count that only goes up."""

    _kind = "counter"

    def __init__(self, name, description="", tag_keys=None, _own=False):
        super().__init__(name, description, tag_keys, _own=_own)

    def inc(self, value=1.0, tags=None):
        if value <= 0:
            raise ValueError(f"counter {self._name}: inc takes a positive "
                             f"value, got {value}")
        self._record(value, tags)


class Gauge(Metric):
    """The last value set."""

    _kind = "gauge"

    def __init__(self, name, description="", tag_keys=None, _own=False):
        super().__init__(name, description, tag_keys, _own=_own)

    def set(self, value, tags=None):
        if value is None:
            return
        self._record(value, tags)


class Histogram(Metric):
    """Observations counted in buckets: ``boundaries`` are their upper
    bounds, increasing."""

    _kind = "histogram"

    def __init__(self, name, description="", boundaries=None, tag_keys=None,
                 _own=False):
        if not boundaries:
            raise ValueError(f"histogram {name} needs boundaries")
        self._boundaries = [float(b) for b in boundaries]
        super().__init__(name, description, tag_keys, self._boundaries,
                         _own=_own)

    @property
    def info(self):
        out = super().info
        out["boundaries"] = list(self._boundaries)
        return out

    def observe(self, value, tags=None):
        self._record(value, tags)
