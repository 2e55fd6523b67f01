"""Helpers for the compiled-core tests: running Cores, comparing machine states.

Owns what tests/test_core_*.py and tests/test_differential.py share: the list
of compiled dispatch variants, running a Core until it halts or traps while
recording native calls, and the comparable state of a Core (its snapshot,
heap blocks included, plus the status fields).
Programs are built with tests/pyvm_support.build (raw ISA encoding, no voxasm).
"""

from __future__ import annotations


import pytest

from voxvm.backends import Status
from voxvm.config import VMConfig

core_module = pytest.importorskip("voxvm.backends.compiled._core", reason="the compiled core is not built")
Core = core_module.Core
DISPATCHES = core_module.DISPATCH_VARIANTS           # e.g. ("goto", "switch", "count")

CONFIG = VMConfig(init_heap=64 * 1024)


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
    """Everything observable about a stopped Core, heap blocks included."""
    dump = core.snapshot(1 if status == Status.TRAP else 0)
    result = {
        "status": int(status), "ip": core.ip, "flags": tuple(dump.flags),
        "registers": [(int(v), int(t)) for v, t in dump.registers],
        "data_stack": [(int(v), int(t)) for v, t in dump.data_stack],
        "call_stack": list(dump.call_stack), "pending": list(dump.pending),
        "memory": bytes(dump.memory),
        "heap": [(int(a), int(n), int(k), bytes(d)) for a, n, k, d in dump.heap],
    }
    if status == Status.TRAP:
        result["trap"] = (core.trap_kind, core.trap_ip, core.trap_a, core.trap_b)
    if status == Status.NCALL:
        result["ncall"] = (core.ncall_code, core.ncall_ip)
    return result


def differences(a: dict, b: dict) -> dict:
    """The fields in which two states differ (for readable assertion messages)."""
    return {key: (a.get(key), b.get(key)) for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)}


