"""The VM configurations the tests share (one definition each)."""

from __future__ import annotations

from voxvm.config import VMConfig

# The default of the unit tests: a 64 KiB heap (small, so growth paths run).
CONFIG = VMConfig(init_heap=64 * 1024)

# The heap-family tests: the same heap with a 1 MiB ceiling.
HEAP_CONFIG = VMConfig(init_heap=64 * 1024, max_heap=1 << 20)


def config(**options) -> VMConfig:
    """CONFIG with some fields changed."""
    return VMConfig(**{"init_heap": 64 * 1024, **options})


def config_for(backend: str, **options) -> VMConfig:
    """A config that selects ``backend`` (``python`` or ``cython``) for voxvm.machine."""
    return config(backend=backend, **options)
