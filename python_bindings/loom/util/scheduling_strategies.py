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
