"""Shared test fixtures: where the conformance vectors live, and the backends.

The conformance vectors are the project's own test data in
``tests/conformance/`` (docs/conformance.md). They were copied from the shared
vector set; when that set exists beside the checkout (``../shared/conformance``,
as in CI), tests/test_conformance_copy.py checks that the copy holds every one
of its files with identical bytes, so new upstream vectors are noticed.
VOXVM_CONFORMANCE overrides the location the tests read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = Path(os.environ.get("VOXVM_CONFORMANCE", REPO / "tests" / "conformance")).resolve()
# The shared vector set the copy above was taken from, when it is beside the checkout.
SHARED_CONFORMANCE = REPO.parent / "shared" / "conformance"


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
