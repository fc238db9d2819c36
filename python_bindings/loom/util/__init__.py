"""Utilities on top of the core API (placement groups arrive with the GPU
scheduling work)."""
