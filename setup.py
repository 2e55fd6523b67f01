"""Build the Cython extension(s); all metadata lives in pyproject.toml.

``pip install .`` compiles ``voxvm/backends/compiled/_core.pyx`` (with the C
core in ``voxvm/backends/compiled/csrc``, the heap in ``csrc/heap``) at -O3 with
the compiler directives of the dispatch loop (set once here), and the small
test extension ``_heaptest.pyx`` (HeapTester over the same heap headers, for
tests and tools; the production ``_core`` does not contain it). Set
VOXVM_PUREPYTHON=1 to skip the extensions entirely: the pure-Python backend
then runs everything.

To add an extension, append one ``Extension`` to ``EXTENSIONS``; every entry
gets the same flags and directives.
"""

import os
from pathlib import Path

from setuptools import setup

COMPILED = "voxvm/backends/compiled"
CSRC = f"{COMPILED}/csrc"


def c_headers() -> list[str]:
    """The C headers the core includes: rebuild when they change, ship them in sdists."""
    return sorted(str(p.as_posix()) for p in Path(CSRC).rglob("*.h"))


ext_modules = []
if not os.environ.get("VOXVM_PUREPYTHON"):
    from Cython.Build import cythonize
    from setuptools import Extension

    # setuptools puts ours after the interpreter's CFLAGS (Debian: -O2), so -O3 wins.
    # No -march=native: wheels must run on every x86-64 (performance.md rule 7).
    extra = ["-O3"]
    EXTENSIONS = [
        Extension("voxvm.backends.compiled._core", [f"{COMPILED}/_core.pyx"], include_dirs=[CSRC], depends=c_headers(),
                  extra_compile_args=extra),
        Extension("voxvm.backends.compiled._heaptest", [f"{COMPILED}/_heaptest.pyx"], include_dirs=[CSRC],
                  depends=c_headers(), extra_compile_args=extra),
    ]
    ext_modules = cythonize(
        EXTENSIONS,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
        quiet=True,
    )

setup(ext_modules=ext_modules)
