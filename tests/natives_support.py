"""A small builder for the .vvs programs of tests/test_natives_*.py.

Owns ``VvsProgram``: it collects text-section lines and data items, offers
the few idioms the native tests repeat (copy a string into the heap, print a
register or a heap string, report which exception an ncall raised) and runs
the result with ``voxvm.machine.run_program`` on a named backend.
Registers r25..r31 are the builder's scratch registers; tests use r10..r24.
"""

from __future__ import annotations

import io

import pytest

from voxasm import assemble
from voxvm.config import VMConfig
from voxvm.machine import compiled_core_class, run_program

# The exceptions a native can raise, in the order `outcome` tests them.
EXCEPTIONS = ["nativefault", "heapreadfault", "heapwritefault", "invaliddatatype",
              "heapsegmfault"]


def require_backend(backend: str) -> None:
    if backend == "cython" and compiled_core_class() is None:
        pytest.skip("the compiled backend is not built")


class VvsProgram:
    def __init__(self) -> None:
        self.text: list[str] = []
        self.data: list[str] = []
        self._labels = 0
        for name in EXCEPTIONS + ["ok"]:
            self.data.append(f'    msg_{name} str "{name}"')

    def op(self, *lines: str) -> "VvsProgram":
        self.text.extend(f"    {line}" for line in lines)
        return self

    def label(self, stem: str) -> str:
        self._labels += 1
        return f"{stem}_{self._labels}"

    def heap_text(self, register: str, text: str, *, room: int | None = None) -> int:
        """Allocate ``room`` bytes (default: the text's size) at ``register`` and copy the
        UTF-16BE ``text`` there; returns the byte count."""
        size = len(text.encode("utf-16-be"))
        name = self.label("text")
        self.data.append(f'    {name} str "{text}"')
        self.op(f"alloc {register} {max(room or size, 1)}",
                f"dslea r29 {name} 9",          # 9 = past the item's type byte and length
                f"uload r28 {size}",
                f"storedat {register} r29 r28")
        return size

    def print_reg(self, register: str) -> "VvsProgram":
        return self.op(f"movr r1 {register}", "uload r2 1", "ncall 1 r0")

    def print_heap(self, address: str, count: str) -> "VvsProgram":
        """Print the UTF-16BE text of ``count`` (a uint register) bytes at heap ``address``."""
        return self.op(f"movr r1 {address}", "uload r2 1", f"movr r3 {count}", "ncall 1 r0")

    def print_msg(self, name: str) -> "VvsProgram":
        return self.op(f"dsload r1 msg_{name} 0", "uload r2 1", "ncall 1 r0")

    def outcome(self) -> "VvsProgram":
        """Print the name of the pending exception the last ncall raised, or ``ok``."""
        end = self.label("end")
        targets = {name: self.label(name) for name in EXCEPTIONS}
        for name, target in targets.items():
            self.op(f"jexc @{name} @{target}")
        self.print_msg("ok").op(f"jmp @{end}")
        for name, target in targets.items():
            self.text.append(f"label {target}")
            self.print_msg(name).op(f"jmp @{end}")
        self.text.append(f"label {end}")
        return self

    def ncall(self, code: int, **registers) -> "VvsProgram":
        """Load uint arguments (r1=..., or a register name as source) and call ``code``;
        then report the outcome."""
        for reg, value in registers.items():
            if isinstance(value, str):
                self.op(f"movr {reg} {value}")
            else:
                self.op(f"uload {reg} {value}")
        return self.op(f"ncall 0x{code:x} r0").outcome()

    def source(self) -> str:
        return "\n".join(["section text", ".start", *self.text, "    halt",
                          "section data", *self.data]) + "\n"

    def run(self, backend: str, stdin: bytes = b"") -> tuple[int, list[str], list[str]]:
        """Exit status, stdout lines, and the VM's ``voxvm:`` stderr lines."""
        require_backend(backend)
        program = assemble(self.source(), "natives_test.vvs")
        out, err = io.BytesIO(), io.BytesIO()
        rc = run_program(program, VMConfig(backend=backend, init_heap=1 << 20),
                         io.BytesIO(stdin), out, err)
        stderr = err.getvalue().decode()
        assert all(line.startswith("voxvm:") for line in stderr.splitlines()), stderr
        return rc, out.getvalue().decode().splitlines(), stderr.splitlines()
