"""Tiny program builder for the VM unit tests (independent of voxasm).

``build(...)`` takes instructions as tuples ``("uadd", 1, 2)``, label markers
``"name:"`` and raw ``bytes``; an operand written ``"@name"`` is the address of
that label. ``data`` items (made with ``item``) go after the code, and
``data_base`` points at them; a data operand written ``"%name"`` is the offset of
the named item inside the data segment.
"""

from __future__ import annotations

import struct

from voxvm.backends import Status
from voxvm.config import VMConfig
from voxvm.isa import BY_MNEMONIC, encode
from voxvm.program import Program
from voxvm.backends.reference.core import PyCore


def item(type_byte: int, payload: bytes, const: bool = False) -> bytes:
    """A data-segment item: type byte, u64 BE length, payload (upstream §1.6)."""
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


def make_core(*code, config: VMConfig | None = None, **kw) -> PyCore:
    return PyCore(build(*code, **kw), config or VMConfig(init_heap=64 * 1024))


def run_to_halt(*code, config: VMConfig | None = None, setup=None, **kw) -> PyCore:
    """Run a program that must halt without natives; ``setup(core)`` may preset registers."""
    core = make_core(*code, config=config, **kw)
    if setup:
        setup(core)
    status = core.run()
    assert status == Status.HALT, (Status(status), core.trap_kind, hex(core.trap_ip))
    return core


def run_to_trap(*code, config: VMConfig | None = None, setup=None, **kw) -> PyCore:
    core = make_core(*code, config=config, **kw)
    if setup:
        setup(core)
    status = core.run()
    assert status == Status.TRAP, Status(status)
    return core
