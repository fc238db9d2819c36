"""Utilities on top of the core API: scheduling strategies (placement groups
arrive with the rest of the GPU scheduling work)."""
from loom.util import scheduling_strategies  # noqa: F401
