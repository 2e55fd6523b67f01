"""The compiled core was built from the sources beside these tests (voxvm/backends/compiled/build_digest.py).

Editing csrc/ or regenerating vv_tables.h without rebuilding used to show up as an unknown
opcode trap or a flags difference in some unrelated test; this says what is wrong.
"""

from __future__ import annotations

import pytest

from conftest import REPO
from voxvm.backends.compiled.build_digest import source_digest

core = pytest.importorskip("voxvm.backends.compiled._core", reason="no compiled core (a pure-Python install)")


def test_the_compiled_core_is_built_from_these_sources():
    built = core.BUILD_DIGEST
    if not built:
        pytest.skip("this core was built without setup.py's digest")
    assert built == source_digest(REPO / "voxvm" / "backends" / "compiled"), (
        "the compiled core was built from other sources than voxvm/backends/compiled/ here: "
        "rebuild it (pip install -e '.[test]', or python setup.py build_ext --inplace)")
