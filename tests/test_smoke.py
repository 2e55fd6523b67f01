"""The package imports and the compiled core was built by the install."""

import os

import pytest


def test_version():
    import voxvm

    assert voxvm.__version__


@pytest.mark.skipif(bool(os.environ.get("VOXVM_PUREPYTHON")), reason="pure-Python install")
def test_compiled_core_was_built():
    from voxvm.backends.compiled import _core  # noqa: F401  (an ImportError here means the install skipped the build)
