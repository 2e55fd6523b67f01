"""Program builders for the tests: the one place programs are made.

Two builders, for two layers:

* ``build(...)`` encodes instructions directly with voxvm.isa (no voxasm), for
  the VM, compiled-core, differential and heap tests;
* ``VvsProgram`` writes .vvs source and runs it through voxasm and
  voxvm.machine.run_program, for the host (native) tests. Registers r25..r31
  are its scratch registers; tests use r10..r24.

``build(...)`` takes instructions as tuples ``("uadd", 1, 2)``, label markers
``"name:"`` and raw ``bytes``; an operand written ``"@name"`` is the address of
that label. ``data`` items (made with ``item``) go after the code, and
``data_base`` points at them; a data operand written ``"%name"`` is the offset of
the named item inside the data segment.
"""

from __future__ import annotations

import io
import struct

from voxvm.isa import BY_MNEMONIC, encode
from voxvm.program import Program


def item(type_byte: int, payload: bytes, const: bool = False) -> bytes:
    """A data-segment item: type byte, u64 BE length, payload (upstream.md §1.6)."""
    return bytes([type_byte | (0x10 if const else 0)]) + len(payload).to_bytes(8, "big") + payload


def u64s(*values: int) -> bytes:
    return b"".join((v & (2**64 - 1)).to_bytes(8, "big") for v in values)


def f64s(*values: float) -> bytes:
    return b"".join(struct.pack(">d", v) for v in values)


def utf16(text: str) -> bytes:
    return text.encode("utf-16-be")


def fbits(x: float) -> int:
    return struct.unpack(">Q", struct.pack(">d", x))[0]


def build(*code, data: dict[str, bytes] | None = None, functions: tuple[str, ...] = (),
          entry: str | None = None) -> Program:
    data = data or {}
    offsets, position = {}, 0
    for name, blob in data.items():
        offsets[name] = position
        position += len(blob)

    def size(element) -> int:
        if isinstance(element, bytes):
            return len(element)
        if isinstance(element, str):
            return 0
        return BY_MNEMONIC[element[0]].size

    labels, address = {}, 0
    for element in code:
        if isinstance(element, str):
            labels[element.rstrip(":")] = address
        address += size(element)
    image = bytearray()
    for element in code:
        if isinstance(element, bytes):
            image += element
        elif isinstance(element, tuple):
            operands = []
            for value in element[1:]:
                if isinstance(value, str) and value.startswith("@"):
                    value = labels[value[1:]]
                elif isinstance(value, str) and value.startswith("%"):
                    value = offsets[value[1:]]
                elif isinstance(value, float):
                    value = fbits(value)
                operands.append(value & (2**64 - 1))
            image += encode(BY_MNEMONIC[element[0]], operands)
    data_base = len(image)
    for blob in data.values():
        image += blob
    return Program(image=bytes(image), entry=labels[entry] if entry else 0, data_base=data_base,
                   functions=tuple(labels[f] for f in functions))


# ---------------------------------------------------------------- .vvs programs (host tests)

# The exceptions a native can raise, in the order `outcome` tests them.
EXCEPTIONS = ["nativefault", "heapreadfault", "heapwritefault", "invaliddatatype",
              "heapsegmfault"]


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

    def run(self, backend: str, stdin: bytes = b"", **grants) -> tuple[int, list[str], list[str]]:
        """Exit status, stdout lines, and the natives' ``voxvm:`` stderr lines.

        The lines about raised and pending exceptions (``voxvm: exception...``,
        semantics.md §9) are left out: the program's ``outcome()`` already shows
        each raise, and tests/vm/test_diagnostics.py tests those lines.

        ``grants`` are capability fields of VMConfig; by default the program may run
        commands and use the network (the natives' own tests), as with
        ``--allow-run --allow-net``, unless it runs in the sandbox (which would
        ignore them, with a warning).
        """
        from voxasm import assemble_program as assemble          # a broken voxasm fails the test, never skips it
        from voxvm.machine import run_program

        from .configs import config_for
        from .machines import require_backend

        require_backend(backend)
        program = assemble(self.source(), "natives_test.vvs")
        out, err = io.BytesIO(), io.BytesIO()
        if not grants.get("sandbox"):
            grants = {"allow_run": True, "allow_net": "*", **grants}
        rc = run_program(program, config_for(backend, init_heap=1 << 20, **grants),
                         io.BytesIO(stdin), out, err)
        stderr = err.getvalue().decode()
        assert all(line.startswith("voxvm:") for line in stderr.splitlines()), stderr
        lines = [line for line in stderr.splitlines() if not line.startswith("voxvm: exception")]
        return rc, out.getvalue().decode().splitlines(), lines
