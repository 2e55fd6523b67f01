"""The profile report (``--profile``): what the profiling loop counted, for people and tools.

Owns ``Profile`` (built from ``Core.profile_data()``: per-address instruction
counts and nanoseconds, and the calling-context tree with call counts; both
backends count the same way, csrc/vv_debug.h and
voxvm/backends/reference/profile.py) and its three outputs:

* ``table()``: instructions and time share per function and per opcode, the
  hottest source lines (when the program has symbols) and call counts;
* ``as_json()``: the same numbers, plus every calling context, as a JSON
  document (schema in docs/debugging.md);
* ``folded()``: folded stacks (``main;sum;helper 1234`` per line, weighed by
  instructions executed in that context) that flamegraph.pl, inferno and
  speedscope read.

Instruction counts are exact and the same on both backends; times are
measured (a time-stamp counter read before every instruction on the compiled
core, ``perf_counter_ns`` on the reference), so they carry the profiler's own
cost and differ from run to run.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Callable

from .isa import BY_CODE
from .program import Program

PROFILE_FORMAT = "voxvm-profile"
PROFILE_VERSION = 1
TOP_LINES = 15
_OUTSIDE = "(code appended by dlbc)"
_TOP = "(top level)"


class Profile:
    """One run's profile, aggregated."""

    def __init__(self, data: dict, program: Program, read: Callable[[int, int], bytes | None],
                 backend: str) -> None:
        self.program = program
        self.backend = backend
        last = data["buckets"] - 1
        self.addresses = [(a, n, ns) for a, n, ns in data["addresses"]]
        self.instructions = sum(n for _, n, _ in self.addresses)
        self.ns = sum(ns for _, _, ns in self.addresses)
        functions: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        opcodes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        lines: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
        symbols = program.symbols
        for address, count, ns in self.addresses:
            if address >= last or address >= len(program.image):
                function = mnemonic = _OUTSIDE
            else:
                function = program.function_at(address) or _TOP
                byte = read(address, 1)
                op = BY_CODE.get(byte[0]) if byte else None
                mnemonic = op.mnemonic if op else "(not an instruction)"
                if symbols is not None:
                    line = symbols.line_at(address)
                    if line is not None:
                        lines[(symbols.source_path or program.path, line)][0] += count
                        lines[(symbols.source_path or program.path, line)][1] += ns
            functions[function][0] += count
            functions[function][1] += ns
            opcodes[mnemonic][0] += count
            opcodes[mnemonic][1] += ns
        self.functions = dict(functions)
        self.opcodes = dict(opcodes)
        self.lines = dict(lines)
        # The calling contexts: node = (entry, parent, calls, count, ns); node 0 is the root.
        self.nodes = data["nodes"]
        self.paths = self._paths()
        self.calls: dict[str, int] = defaultdict(int)
        for index, (entry, _, calls, _, _) in enumerate(self.nodes):
            if index:
                self.calls[self._entry_name(entry)] += calls

    def _entry_name(self, entry: int) -> str:
        """The function a context entered: the one starting at ``entry``, else the one around it."""
        program = self.program
        for index, start in enumerate(program.functions):
            if start == entry:
                return program.function_name(index)
        if entry >= len(program.image):
            return _OUTSIDE
        return program.function_at(entry) or f"0x{entry:x}"

    def _paths(self) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        for index, (entry, parent, _, _, _) in enumerate(self.nodes):
            name = self._entry_name(entry) if index else (self.program.function_at(entry) or _TOP)
            out.append(((*out[parent], name) if index else (name,)))
        return out

    # ------------------------------------------------------------------ outputs

    def _share(self, ns: int) -> str:
        return f"{100.0 * ns / self.ns:5.1f}%" if self.ns else "    -"

    def _count_share(self, count: int) -> str:
        return f"{100.0 * count / self.instructions:5.1f}%" if self.instructions else "    -"

    def table(self) -> list[str]:
        """The report as lines of text."""
        out = [f"profile: {self.instructions} instructions in {self.ns / 1e9:.6f} s "
               f"(backend {self.backend}; times include the profiler's own cost)"]
        hottest = sorted(self.lines.items(), key=lambda x: (-x[1][0], x[0]))[:TOP_LINES]
        width = max([len(n) for n in self.functions] + [len(n) for n in self.opcodes]
                    + [len(f"{p}:{line}") for (p, line), _ in hottest] + [8])
        out.append(f"  {'function':<{width}} {'instructions':>14} {'instr %':>8} {'time %':>8} {'calls':>10}")
        for name, (count, ns) in sorted(self.functions.items(), key=lambda x: (-x[1][0], x[0])):
            calls = self.calls.get(name)
            out.append(f"  {name:<{width}} {count:>14} {self._count_share(count):>8} {self._share(ns):>8} "
                       f"{calls if calls is not None else '-':>10}")
        out.append(f"  {'opcode':<{width}} {'instructions':>14} {'instr %':>8} {'time %':>8}")
        for name, (count, ns) in sorted(self.opcodes.items(), key=lambda x: (-x[1][0], x[0])):
            out.append(f"  {name:<{width}} {count:>14} {self._count_share(count):>8} {self._share(ns):>8}")
        if self.lines:
            out.append(f"  {'source line':<{width}} {'instructions':>14} {'instr %':>8} {'time %':>8}"
                       f"   (the hottest {len(hottest)} of {len(self.lines)})")
            for (path, line), (count, ns) in hottest:
                out.append(f"  {f'{path}:{line}':<{width}} {count:>14} {self._count_share(count):>8} "
                           f"{self._share(ns):>8}")
        return out

    def as_json(self) -> str:
        document = {
            "format": PROFILE_FORMAT, "version": PROFILE_VERSION, "backend": self.backend,
            "program": self.program.path, "instructions": self.instructions, "ns": self.ns,
            "functions": [{"name": n, "instructions": c, "ns": ns, "calls": self.calls.get(n, 0)}
                          for n, (c, ns) in sorted(self.functions.items(), key=lambda x: (-x[1][0], x[0]))],
            "opcodes": [{"mnemonic": n, "instructions": c, "ns": ns}
                        for n, (c, ns) in sorted(self.opcodes.items(), key=lambda x: (-x[1][0], x[0]))],
            "lines": [{"file": p, "line": line, "instructions": c, "ns": ns}
                      for (p, line), (c, ns) in sorted(self.lines.items(), key=lambda x: (-x[1][0], x[0]))],
            "addresses": [{"address": a, "instructions": c, "ns": ns} for a, c, ns in self.addresses],
            "contexts": [{"stack": list(path), "calls": calls, "instructions": count, "ns": ns}
                         for path, (_, _, calls, count, ns) in zip(self.paths, self.nodes)],
        }
        return json.dumps(document, indent=1) + "\n"

    def folded(self) -> str:
        """Folded stacks: one ``frame;frame;... instructions`` line per calling context."""
        weights: dict[str, int] = defaultdict(int)
        for path, (_, _, _, count, _) in zip(self.paths, self.nodes):
            if count:
                weights[";".join(_frame(name) for name in path)] += count
        return "".join(f"{stack} {count}\n" for stack, count in sorted(weights.items()))


def _frame(name: str) -> str:
    """A frame name folded-stack readers take as one frame (no ';', no blanks)."""
    return "".join("_" if c == ";" or c.isspace() else c for c in name)


def output_format(path: str, requested: str | None) -> str:
    """``--profile-format``, else json for a ``.json`` file, else the table."""
    if requested is not None:
        return requested
    return "json" if path.lower().endswith(".json") else "table"
