"""Backends and machine states: creating, running and comparing cores.

Owns what every VM-level test shares:

* which backends exist: ``python`` (voxvm.backends.reference.core.PyCore,
  always) and ``cython`` (voxvm.backends.compiled._core.Core). The compiled
  core is absent only in a pure-Python install (VOXVM_PUREPYTHON=1, the same
  rule as tests/test_smoke.py); anywhere else a missing core is an import
  error, never a skip;
* ``new_core`` / ``run_to_halt`` / ``run_to_trap``: one program on one backend;
* ``run``: until halt or trap, recording native calls;
* ``state`` / ``differences``: everything observable about a stopped core,
  heap blocks included, for differential comparisons.
"""

from __future__ import annotations

import os

import pytest

from voxvm.backends import Status, observable_state
from voxvm.backends.reference.core import PyCore
from voxvm.config import VMConfig

from .builders import build
from .configs import CONFIG

PUREPYTHON = bool(os.environ.get("VOXVM_PUREPYTHON"))
# The sanitizer run (docs/reliability.md "Sanitizers") preloads ASan: it keeps freed memory
# in quarantine and turns a crash into an abort, so RSS and signal checks mean nothing there.
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")
NO_COMPILED_CORE = "pure-Python install (VOXVM_PUREPYTHON=1): there is no compiled core"


def backends() -> list[str]:
    """Backends to run VM tests on: the compiled core unless pure-Python, then the reference."""
    return ["python"] if PUREPYTHON else ["cython", "python"]


def compiled():
    """The voxvm.backends.compiled._core module.

    Skips (with the reason) only in a pure-Python install; otherwise a core
    that is not built raises ImportError, so the suite fails loudly. Call it
    at module level in compiled-only modules (the whole module is skipped).
    """
    if PUREPYTHON:
        pytest.skip(NO_COMPILED_CORE, allow_module_level=True)
    from voxvm.backends.compiled import _core

    return _core


def dispatches() -> tuple[str, ...]:
    """The compiled dispatch loops, e.g. ("goto", "switch", "count"); empty when pure-Python."""
    return () if PUREPYTHON else tuple(compiled().DISPATCH_VARIANTS)


def require_backend(backend: str) -> None:
    """For tests taking a backend name: the compiled one must be importable unless pure-Python."""
    if backend == "cython":
        compiled()


def core_class(backend: str):
    """The Core class of ``backend`` (``python`` or ``cython``)."""
    if backend == "python":
        return PyCore
    if backend == "cython":
        return compiled().Core
    raise ValueError(f"unknown backend {backend!r}")


def new_core(backend: str, program, config: VMConfig = CONFIG, *, regs=None, dispatch=None):
    """A core of ``backend`` for ``program``, with registers preset from ``regs`` {index: (bits, tag)}."""
    if backend == "cython":
        core = compiled().Core(program, config, dispatch=dispatch)
    else:
        core = core_class(backend)(program, config)
    for index, (bits, tag) in (regs or {}).items():
        core.set_reg(index, bits & (2**64 - 1), tag)
    return core


def make_core(backend: str, *code, config: VMConfig = CONFIG, regs=None, **kw):
    """``new_core`` of ``build(*code, **kw)``."""
    return new_core(backend, build(*code, **kw), config, regs=regs)


def run_to_halt(backend: str, *code, config: VMConfig = CONFIG, regs=None, setup=None, **kw):
    """Run a program that must halt without natives; ``setup(core)`` may prepare the core."""
    core = make_core(backend, *code, config=config, regs=regs, **kw)
    if setup:
        setup(core)
    status = core.run()
    assert status == Status.HALT, (Status(status), core.trap_kind, hex(core.trap_ip))
    return core


def run_to_trap(backend: str, *code, config: VMConfig = CONFIG, regs=None, setup=None, **kw):
    """Run a program that must trap."""
    core = make_core(backend, *code, config=config, regs=regs, **kw)
    if setup:
        setup(core)
    status = core.run()
    assert status == Status.TRAP, Status(status)
    return core


def flags(core) -> list[int]:
    """[OF, ZF, NF, CF] on every backend (PyCore keeps a list, Core gives a tuple)."""
    return list(core.flags)


def data_stack(core) -> list[tuple[int, int]]:
    return [(int(v), int(t)) for v, t in core.snapshot().data_stack]


def call_stack(core) -> list[int]:
    return list(core.snapshot().call_stack)


def run(core, budget: int = -1, max_ncalls: int = 10_000) -> tuple[int, list[tuple[int, int]]]:
    """Run until halt, trap or budget; ``(status, [(ncall_code, ncall_ip), ...])``."""
    ncalls = []
    for _ in range(max_ncalls):
        status = core.run(budget)
        if status != Status.NCALL:
            return int(status), ncalls
        ncalls.append((core.ncall_code, core.ncall_ip))
    raise AssertionError("too many native calls")


def state(core, status: int) -> dict:
    """Everything observable about a stopped core, heap blocks included."""
    return observable_state(core, status)


def differences(a: dict, b: dict) -> dict:
    """The fields in which two states differ (for readable assertion messages)."""
    return {key: (a.get(key), b.get(key)) for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)}
