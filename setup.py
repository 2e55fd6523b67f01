"""Build the Cython extension(s); all metadata lives in pyproject.toml.

``pip install .`` compiles ``voxvm/backends/compiled/_core.pyx`` (with the C
core in ``voxvm/backends/compiled/csrc``, the heap in ``csrc/heap``) at -O3 with
the compiler directives of the dispatch loop (set once here), and the small
test extension ``_heaptest.pyx`` (HeapTester over the same heap headers, for
tests and tools; the production ``_core`` does not contain it). Set
VOXVM_PUREPYTHON=1 to skip the extensions entirely: the pure-Python backend
then runs everything. VOXVM_SANITIZE=address,undefined builds both with
AddressSanitizer and UndefinedBehaviorSanitizer instead (docs/reliability.md
"Sanitizers"; for the tests and the fuzzers, never a release).

To add an extension, append one ``Extension`` to ``EXTENSIONS``; every entry
gets the same flags and directives.
"""

import importlib.util
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
    # -fno-reorder-blocks-and-partition: GCC guesses how often each computed-goto target
    # runs, and in some builds it moved most of the dispatch loop's handlers into
    # .text.unlikely (callgrind: vv_run_goto.cold), so the hot code's layout changed from
    # one edit to the next; the loop stays in one piece (clang ignores the flag).
    # -fno-tree-slp-vectorize: GCC stored a 16-byte stack entry (value, tag) by moving both
    # words into an SSE register (movq, movq, punpcklqdq, movups) instead of two stores;
    # without it, callgrind counts fib -1.0 %, alloc -0.8 %, bench_gc -0.6 %, the rest and the
    # assembler unchanged (docs/performance.md, eighth session of 2026-12-05).
    extra = ["-O3", "-fno-reorder-blocks-and-partition", "-fno-tree-slp-vectorize"]
    link = []
    # VOXVM_SANITIZE=address,undefined builds the core with those sanitizers for the test
    # suite and the fuzzers (docs/reliability.md "Sanitizers"); never for a release.
    sanitize = os.environ.get("VOXVM_SANITIZE", "").strip()
    if sanitize:
        extra = ["-O1", "-g", "-fno-omit-frame-pointer", f"-fsanitize={sanitize}",
                 "-fno-sanitize-recover=all"]
        link = [f"-fsanitize={sanitize}"]
    # The digest of the core's sources, compiled in: a test names a stale build (build_digest.py).
    spec = importlib.util.spec_from_file_location("build_digest", f"{COMPILED}/build_digest.py")
    build_digest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_digest)
    digest = [("VV_BUILD_DIGEST", f'"{build_digest.source_digest(COMPILED)}"')]
    EXTENSIONS = [
        Extension("voxvm.backends.compiled._core", [f"{COMPILED}/_core.pyx"], include_dirs=[CSRC], depends=c_headers(),
                  define_macros=digest, extra_compile_args=extra, extra_link_args=link),
        Extension("voxvm.backends.compiled._heaptest", [f"{COMPILED}/_heaptest.pyx"], include_dirs=[CSRC],
                  depends=c_headers(), extra_compile_args=extra, extra_link_args=link),
        # The assembler's hot path (voxasm/_scan.pyx); voxasm runs without it, slower.
        Extension("voxasm._scan", ["voxasm/_scan.pyx"], extra_compile_args=extra, extra_link_args=link),
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
