"""Shared test fixtures: where the conformance vectors live, and the backends.

The conformance vectors are read in place from ``../shared/conformance``
(beside the checkout), never copied into the repository. VOXVM_CONFORMANCE
overrides the location.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = Path(os.environ.get("VOXVM_CONFORMANCE", REPO.parent / "shared" / "conformance")).resolve()


def conformance_dir(kind: str) -> Path:
    """``programs``, ``asm-errors``, ``bad-vve`` or ``concurrency``; fails loudly if missing."""
    path = CONFORMANCE / kind
    if not path.is_dir():
        raise RuntimeError(f"conformance vectors not found at {path} (set VOXVM_CONFORMANCE)")
    return path


def available_backends() -> list[str]:
    """Backends to run VM tests on: always the Python reference, plus the compiled core if built."""
    names = ["python"]
    if not os.environ.get("VOXVM_PUREPYTHON"):
        names.insert(0, "cython")
    return names


@pytest.fixture(params=available_backends())
def backend(request) -> str:
    """Parametrises a test over every available backend."""
    return request.param
