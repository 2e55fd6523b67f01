#!/usr/bin/env python3
"""Fuzzer of the .vve path: loader, disassembler round trip, compiled core against the reference.

Owns the ``.vve`` target of tools/fuzzlib.py. Each case mutates a seed file
(the conformance programs' golden ``.vve`` files, the ``.vve`` the assembler
makes from their ``.vvs``, and ``tests/conformance/bad-vve/``) and:

1. loads it with ``voxvm.formats.load_vve``: ``FormatError`` is a clean
   rejection, any other exception a finding;
2. for what loads: ``voxvm.disasm.disassemble`` then ``voxasm.assemble_program``
   must give the same program (``build_vve`` of both identical), unless the
   disassembler says no source can express it (``InputError``); the listing
   form (checked on an eighth of the cases: it is slow) must never fail;
3. runs it on the reference core (``PyCore``) and on the compiled ``Core``
   (one of its dispatch loops, chosen by the case) with natives running in
   Python on both, ``run(budget)`` slice by slice; after every return of
   ``run`` the status, trap, native-call fields, ip, flags, registers and
   tags, data stack, call stack, pending exceptions, main memory and heap
   blocks must be equal, and so must stdout and stderr at the end;
4. when the reference finished (halt, trap, or a native the fuzzer does not
   run), runs the compiled core again with ``print`` in its C native table
   (``set_stdout``) for as many ``run`` calls: same final state, same output.

Natives that touch the host (runcmd 0x07, files 0x10-0x16, network
0x20-0x25), the concurrency ones (0x30-0x39) and the time-dependent ones
(unixtime 0x05, sleep 0x06) are never run: the case stops there ("native
stop"); print, put, input, randf and randint run. Memory is bounded by a small
VMConfig. The run takes place in worker processes, so that a crash of the
compiled core (a signal) or a hang is detected and replayed by id.

    python tools/fuzz_vve.py --cases 1000000 --workers 2 --seed 1
    python tools/fuzz_vve.py --replay 1:4711 --show        # one case, in this process
    python tools/fuzz_vve.py --cases 20000 --save /tmp/vve-failures
"""

from __future__ import annotations

import io
import random
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzzlib  # noqa: E402
from fuzzlib import Failure, Target  # noqa: E402

from voxasm import AssemblyError, assemble_program as assemble  # noqa: E402
from voxvm.backends import Status, observable_state  # noqa: E402
from voxvm.backends.reference.core import PyCore  # noqa: E402
from voxvm.config import VMConfig  # noqa: E402
from voxvm.disasm import disassemble  # noqa: E402
from voxvm.errors import FormatError, InputError  # noqa: E402
from voxvm.formats import FUNC_ENTRY_SIZE, VVE_HEADER_SIZE, build_vve, load_vve  # noqa: E402
from voxvm.host import HostIO, dispatch, load_all_natives  # noqa: E402
from voxvm.traps import TrapKind  # noqa: E402

try:
    from voxvm.backends.compiled import _core
except ImportError:  # the reference alone still checks loader and round trip
    _core = None

# Small memory so that a mutant cannot take the shared machine's RAM; the
# same configuration on both backends.
CONFIG = VMConfig(init_ram=256 * 1024, init_stack=64, max_stack=4096, init_heap=4096,
                  max_heap=256 * 1024, max_recursion=256)
# Natives the fuzzer runs (in voxvm/host, on both cores). Every other
# built-in is a stop; an unknown code is dispatched (it only raises NativeFault).
# It must hold every code the compiled core's C table runs once it has a stdout
# (print 0x01, put 0x08): the "C print" comparison runs those in C, and the
# reference must run them too (check_c_natives).
RUN_NATIVES = {0x01, 0x02, 0x03, 0x04, 0x08}
HOST_NATIVES = {0x05, 0x06, 0x07, *range(0x10, 0x17), *range(0x20, 0x26)}
BUDGETS = (1, 2, 3, 7, 16, 64, 256)
MAX_RUNS = 24              # run() calls per backend and case (slices plus returns after natives)
MAX_SIZE = 1 << 14
# The listing costs as much as the run of both cores: check it on a share of the cases.
LISTING_SHARE = 0.125
HEADER_FIELDS = (0x06, 0x0E, 0x16, 0x1E, 0x26, VVE_HEADER_SIZE, VVE_HEADER_SIZE + 8,
                 VVE_HEADER_SIZE + FUNC_ENTRY_SIZE, VVE_HEADER_SIZE + FUNC_ENTRY_SIZE + 8)


def load_corpus() -> list[bytes]:
    files = fuzzlib.corpus_files("programs", ".vve") + fuzzlib.corpus_files("bad-vve", ".vve")
    corpus = [path.read_bytes() for path in files]
    known = set(corpus)
    for path in fuzzlib.corpus_files("programs", ".vvs"):
        try:
            data = build_vve(assemble(path.read_bytes(), str(path)))
        except AssemblyError:
            continue
        if data not in known:
            known.add(data)
            corpus.append(data)
    return corpus


def generate(rng: random.Random, corpus: list[bytes]) -> bytes:
    return fuzzlib.mutate_bytes(rng, rng.choice(corpus), corpus, MAX_SIZE, HEADER_FIELDS)


# ---------------------------------------------------------------- running


def _differences(a: dict, b: dict) -> str:
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return "; ".join(f"{k}: compiled {a.get(k)!r:.300} != reference {b.get(k)!r:.300}" for k in keys)


def execute(core, budget: int, max_runs: int, c_print: bool = False) -> tuple[list[dict], str, bytes, bytes]:
    """Run ``core`` with ``run(budget)`` calls: (state after each, outcome, stdout, stderr).

    Empty stdin, output into memory, a seeded random generator: the same
    natives give the same results on both backends.
    """
    out, err = io.BytesIO(), io.BytesIO()
    host = HostIO(io.BytesIO(), out, err, seed=0)
    core.set_log(None)
    # Without c_print every native goes to voxvm/host, on both backends alike.
    core.set_stdout(host.take_stdout if c_print else None)
    states = []
    outcome = "budget exhausted"
    for _ in range(max_runs):
        status = core.run(budget)
        states.append(observable_state(core, status))
        if status == Status.HALT:
            outcome = "halted"
            break
        if status == Status.TRAP:
            try:
                outcome = f"trapped: {TrapKind(core.trap_kind).name}"
            except ValueError:
                raise Failure("unknown trap kind", f"trap kind {core.trap_kind}") from None
            break
        if status == Status.NCALL:
            code = core.ncall_code
            # A built-in outside RUN_NATIVES may touch the host: stop there. An
            # unknown code only raises NativeFault, so it is dispatched.
            if code in HOST_NATIVES or (code in load_all_natives() and code not in RUN_NATIVES):
                outcome = f"native stop: 0x{code:02x}"
                break
            dispatch(core, code, host)
        elif status != Status.BUDGET:
            raise Failure("bad status", f"run() returned {status!r}")
    host.flush()
    return states, outcome, out.getvalue(), err.getvalue()


def roundtrip(program) -> str:
    """The disassembler round trip of a loaded program; returns the outcome tag."""
    try:
        source = disassemble(program)
    except InputError:
        return "disasm: unrepresentable"
    try:
        again = assemble(source, "<disassembly>")
    except AssemblyError as exc:
        raise Failure("round trip: assembler rejects the disassembly", f"{exc}\n{source[:2000]}") from None
    if build_vve(again) != build_vve(program):
        raise Failure("round trip: different bytes",
                      f"{build_vve(program).hex()}\n!=\n{build_vve(again).hex()}\n{source[:2000]}")
    return "disasm: round trip identical"


def check_c_natives(core) -> None:
    """A C native outside RUN_NATIVES would run in the C-print pass and stop the reference:
    a mismatch of the fuzzer's own making, so it is reported as such."""
    extra = sorted(set(core.c_natives()) - RUN_NATIVES)
    if extra:
        raise Failure("fuzzer out of date", f"the compiled core runs natives {[hex(c) for c in extra]} "
                                            f"in C; add them to RUN_NATIVES (tools/fuzz_vve.py)")


def check(data: bytes) -> list[str]:
    try:
        program = load_vve(data, "<mutant>")
    except FormatError:
        return ["rejected (FormatError)"]
    tags = ["loaded", roundtrip(program)]
    # The run parameters depend on the input only, so a saved file replays alone.
    plan = random.Random(zlib.crc32(data))
    if plan.random() < LISTING_SHARE:
        disassemble(program, listing=True)      # documented never to fail
        tags.append("disasm: listing checked")
    budget = plan.choice(BUDGETS)
    reference = PyCore(program, CONFIG)
    ref_states, ref_outcome, ref_out, ref_err = execute(reference, budget, MAX_RUNS)
    tags.append(ref_outcome)
    if _core is None:
        return tags
    variant = plan.choice(_core.DISPATCH_VARIANTS)
    core = _core.Core(program, CONFIG, dispatch=variant)
    states, outcome, out, err = execute(core, budget, MAX_RUNS)
    for number, (got, want) in enumerate(zip(states, ref_states)):
        if got != want:
            raise Failure("differential mismatch",
                          f"dispatch {variant}, budget {budget}, run {number}: {_differences(got, want)}")
    if len(states) != len(ref_states) or (out, err) != (ref_out, ref_err):
        raise Failure("differential mismatch",
                      f"dispatch {variant}, budget {budget}: {len(states)} runs / {ref_outcome} vs "
                      f"{len(ref_states)} / {outcome}; stdout {out[:200]!r} vs {ref_out[:200]!r}; "
                      f"stderr {err[:200]!r} vs {ref_err[:200]!r}")
    if ref_outcome != "budget exhausted":
        # Fewer run() returns with print in C: as many calls reach at least as far.
        printer = _core.Core(program, CONFIG, dispatch=variant)
        states, outcome, out, err = execute(printer, budget, len(ref_states), c_print=True)
        check_c_natives(printer)
        if states[-1] != ref_states[-1] or outcome != ref_outcome or (out, err) != (ref_out, ref_err):
            raise Failure("differential mismatch (C print)",
                          f"dispatch {variant}, budget {budget}: {outcome} vs {ref_outcome}; "
                          f"{_differences(states[-1], ref_states[-1])}; stdout {out[:200]!r} vs "
                          f"{ref_out[:200]!r}; stderr {err[:200]!r} vs {ref_err[:200]!r}")
        tags.append("C print checked")
    return tags


def target() -> Target:
    return Target(name="vve", suffix=".vve", load_corpus=load_corpus, generate=generate, check=check,
                  describe=__doc__.splitlines()[0])


if __name__ == "__main__":
    fuzzlib.entry(target, default_cases=10_000)
