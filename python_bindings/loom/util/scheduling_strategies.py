"""Where tasks and actors run: pass as scheduling_strategy=.

    f.options(scheduling_strategy="SPREAD").remote()
    f.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        node_id=loom.get_runtime_context().get_node_id(), soft=False)).remote()
    f.options(label_selector={"zone": "b"}).remote()
"""


class NodeAffinitySchedulingStrategy:
    """Run on the node `node_id` (hex, as loom.nodes() lists it). Hard (the
    default): only there, failing as infeasible when the node is gone. Soft:
    there when it can, else anywhere."""

    def __init__(self, node_id, soft=False):
        if not isinstance(node_id, str) or len(node_id) != 32:
            raise ValueError("node_id must be a node's 32-digit hex id")
        self.node_id = node_id
        self.soft = bool(soft)

    def __repr__(self):
        return (f"NodeAffinitySchedulingStrategy({self.node_id!r}, "
                f"soft={self.soft})")


class PlacementGroupSchedulingStrategy:
    """Run inside a placement group's bundle (`placement_group_bundle_index`,
    -1: any of its bundles), taking the task's resources from it."""

    def __init__(self, placement_group, placement_group_bundle_index=-1):
        from loom.util.placement_group import PlacementGroup
        if not isinstance(placement_group, PlacementGroup):
            raise ValueError("placement_group must be a PlacementGroup")
        n = placement_group.bundle_count
        if not isinstance(placement_group_bundle_index, int) or \
                not -1 <= placement_group_bundle_index < n:
            raise ValueError(f"placement_group_bundle_index must be in "
                             f"[-1, {n})")
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index
