"""Shared test fixtures: where the conformance vectors live, the backends, the dispatch loops.

Every VM-level test takes the ``backend`` fixture, so each expectation is
written once and runs on every available backend; compiled-only tests take
``dispatch`` (every compiled dispatch loop). Helpers live in tests/support/
(importable as ``support``: pyproject sets ``pythonpath = ["tests"]``).

The conformance vectors are the project's own test data in
``tests/conformance/`` (docs/conformance.md). They were copied from the shared
vector set; when that set exists beside the checkout (``../shared/conformance``,
as in CI), tests/conformance/test_conformance_copy.py checks that the copy holds every one
of its files with identical bytes, so new upstream vectors are noticed.
VOXVM_CONFORMANCE overrides the location the tests read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.machines import NO_COMPILED_CORE, PUREPYTHON, backends, dispatches, require_backend

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
    """Backends to run VM tests on: always the Python reference, plus the compiled core
    unless this is a pure-Python install (VOXVM_PUREPYTHON=1); a compiled core that should
    be there but is not built fails the ``cython`` tests instead of skipping them."""
    return backends()


@pytest.fixture(params=available_backends())
def backend(request) -> str:
    """Parametrises a test over every available backend."""
    require_backend(request.param)
    return request.param


def _dispatch_params() -> list:
    if PUREPYTHON:
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_COMPILED_CORE))]
    try:
        return list(dispatches())
    except ImportError:              # not built although it should be: the fixture fails each test
        return ["compiled-core-not-built"]


@pytest.fixture(params=_dispatch_params())
def dispatch(request) -> str:
    """Parametrises a compiled-only test over every compiled dispatch loop."""
    require_backend("cython")
    return request.param
