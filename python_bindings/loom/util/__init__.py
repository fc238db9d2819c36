"""Utilities on top of the core API: scheduling strategies and placement
groups."""
from loom.util import scheduling_strategies  # noqa: F401
from loom.util.placement_group import (placement_group,  # noqa: F401
                                       placement_group_table,
                                       remove_placement_group)
