"""Build the Cython extension(s); all metadata lives in pyproject.toml.

``pip install .`` compiles ``voxvm/_core.pyx`` with -O3 and the compiler
directives of the dispatch loop (set once here). Set VOXVM_PUREPYTHON=1 to
skip the extension entirely: the pure-Python backend then runs everything.
"""

import os

from setuptools import setup

ext_modules = []
if not os.environ.get("VOXVM_PUREPYTHON"):
    from Cython.Build import cythonize
    from setuptools import Extension

    extra = ["-O3"]  # setuptools puts ours after the interpreter's CFLAGS (Debian: -O2)
    ext_modules = cythonize(
        [Extension("voxvm._core", ["voxvm/_core.pyx"], extra_compile_args=extra)],
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
