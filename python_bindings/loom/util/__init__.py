"""Utilities on top of the core API: scheduling strategies, placement
groups, ActorPool, get_node_ip_address; `loom.util.queue.Queue` and
`loom.util.multiprocessing.Pool` are imported from their modules."""
from loom.util import scheduling_strategies  # noqa: F401
from loom.util.actor_pool import ActorPool  # noqa: F401
from loom.util.node import get_node_ip_address  # noqa: F401
from loom.util.placement_group import (placement_group,  # noqa: F401
                                       placement_group_table,
                                       remove_placement_group)
