"""Loom's internals: not a public API."""


def store_mapping():
    """(start address, size) of this process's mapping of the node's
    object store: a value read with loom.get lies inside it when it was
    not copied."""
    from loom import _core
    return _core.store_mapping()
