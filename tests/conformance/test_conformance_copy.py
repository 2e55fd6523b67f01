"""The repository's copy of the conformance vectors against the shared set it came from.

tests/conformance/ is the project's own test data (docs/conformance.md). When
the shared vector set is beside the checkout (``../shared/conformance``, as in
CI), every file there must exist in the copy with identical bytes, so a vector
added or changed upstream of the project fails here until it is copied in.
With only the repository, there is nothing to compare against: that is the one
stated skip.
"""

from __future__ import annotations

import pytest
from conftest import REPO, SHARED_CONFORMANCE

COPY = REPO / "tests" / "conformance"


def _relative_files(root):
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def test_the_copy_is_in_the_repository():
    for kind in ("programs", "asm-errors", "bad-vve", "concurrency", "floats"):
        assert (COPY / kind).is_dir(), f"tests/conformance/{kind} is missing"
    assert any((COPY / "programs").glob("*.vvs"))


@pytest.mark.skipif(not SHARED_CONFORMANCE.is_dir(),
                    reason="no shared conformance set beside the checkout to compare with")
def test_copy_holds_every_shared_vector_byte_for_byte():
    missing, different = [], []
    for rel in _relative_files(SHARED_CONFORMANCE):
        mine = COPY / rel
        if not mine.is_file():
            missing.append(str(rel))
        elif mine.read_bytes() != (SHARED_CONFORMANCE / rel).read_bytes():
            different.append(str(rel))
    assert not missing, f"copy these new vectors into tests/conformance/: {missing}"
    assert not different, f"these vectors changed in the shared set: {different}"
