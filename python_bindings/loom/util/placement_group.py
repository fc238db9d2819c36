"""Placement groups: bundles of resources reserved together, all or none.

    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD")
    loom.get(pg.ready())                       # or pg.wait(timeout_seconds=30)
    f.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
        pg, placement_group_bundle_index=0)).remote()
    remove_placement_group(pg)                 # stops what runs in it
"""
import pickle

from loom import _core
from loom import exceptions
from loom._private import worker

STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


class PlacementGroup:
    def __init__(self, pg_id, bundles):
        self._id = pg_id
        self.bundle_specs = bundles

    @property
    def id(self):
        return self._id.hex()

    @property
    def bundle_count(self):
        return len(self.bundle_specs)

    def ready(self):
        """An ObjectRef that resolves (to True) once every bundle is
        reserved; its get raises InfeasibleError when no nodes can hold
        the group."""
        worker.check_connected()
        return _core.placement_group_ready(self._id,
                                           pickle.dumps(True, protocol=5))

    def wait(self, timeout_seconds=30):
        """True once the group is created; False at the timeout. Raises
        InfeasibleError when no nodes can hold it."""
        worker.check_connected()
        info = _core.get_placement_group(self._id, True,
                                         int(timeout_seconds * 1000))
        if info is None:
            return False
        if info["state"] == "INFEASIBLE":
            raise exceptions.InfeasibleError(
                f"placement group {self.id}: {info['message']}")
        return info["state"] == "CREATED"

    def __reduce__(self):
        return PlacementGroup, (self._id, self.bundle_specs)

    def __repr__(self):
        return f"PlacementGroup({self.id})"

    # The same group however obtained (a copy passed to a task, a lookup).
    def __eq__(self, other):
        if not isinstance(other, PlacementGroup):
            return NotImplemented
        return self._id == other._id

    def __hash__(self):
        return hash(self._id)


def placement_group(bundles, strategy="PACK", name=""):
    worker.check_connected()
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}")
    if not isinstance(bundles, (list, tuple)) or not bundles:
        raise ValueError("bundles must be a non-empty list of dicts")
    clean = []
    for b in bundles:
        if not isinstance(b, dict) or not b or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and v >= 0
                for k, v in b.items()):
            raise ValueError(f"a bundle must map resource names to numbers "
                             f">= 0, got {b!r}")
        clean.append({k: float(v) for k, v in b.items()})
    pg_id = _core.create_placement_group(clean, STRATEGIES.index(strategy),
                                         name)
    return PlacementGroup(pg_id, clean)


def remove_placement_group(pg):
    worker.check_connected()
    _core.remove_placement_group(pg._id)


def placement_group_table(pg=None):
    """{id: info} for every group, or the info of `pg`."""
    worker.check_connected()
    if pg is not None:
        return _core.get_placement_group(pg._id, False, 0)
    return {g["placement_group_id"]: g for g in _core.list_placement_groups()}


def bundle_resources(resources, pg, index):
    """A demand inside a bundle: each resource under the bundle's name (a
    demand of nothing takes a sliver of the bundle's marker)."""
    hexid = pg.id
    suffix = f"_group_{hexid}" if index < 0 else f"_group_{index}_{hexid}"
    out = {f"{k}{suffix}": v for k, v in resources.items() if v > 0}
    if not out:
        out = {f"bundle{suffix}": 0.001}
    out["CPU"] = 0.0  # named: no default CPU outside the bundle
    return out
