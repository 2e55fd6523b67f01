"""The C native table of the compiled core, and print of numbers inside its loop.

Covers csrc/vv_natives.h (the table `ncall` consults before leaving the loop,
its ABI return paths), csrc/vv_builtins.h (print of U/I/F to stdout in C) with
its hand-over to HostIO (voxvm/host/io.py ``take_stdout``: flush at 64 KiB,
per print on a tty, before stderr, at a trap), and the float text both
backends print (csrc/vv_numtext.h and voxvm/values.py ``format_f64``) against
the conformance table. Whatever the compiled core runs in C must print what
the Python handlers print: most tests run a program on both backends, and
the compiled one also with its C print taken out, and compare the bytes.
"""

from __future__ import annotations

import io
import struct

import pytest

from conftest import conformance_dir
from support.machines import compiled
from voxasm import assemble_program as assemble
from voxvm.backends import Status
from voxvm.config import VMConfig
from voxvm.isa import Exc, Tag
from voxvm.machine import Machine, compiled_core_class
from voxvm.traps import Trap, TrapKind
from voxvm.values import format_f64

compiled()          # the compiled core is required: skips only when VOXVM_PUREPYTHON=1

MASK = (1 << 64) - 1


def f_bits(x: float) -> int:
    return struct.unpack(">Q", struct.pack(">d", x))[0]


class Recorder(io.RawIOBase):
    """A binary stream that records each write (to see where flushes happen)."""

    def __init__(self, tty: bool = False, log: list | None = None, name: str = "") -> None:
        self.writes: list[bytes] = []
        self.log = log if log is not None else []
        self.name = name
        self.tty = tty

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.tty

    def write(self, data) -> int:
        data = bytes(data)
        self.writes.append(data)
        self.log.append((self.name, data))
        return len(data)

    def value(self) -> bytes:
        return b"".join(self.writes)


def program(body: str, data: str = ""):
    return assemble(f"section text\n.start\n{body}\n    halt\nsection data\n{data}\n", "native_table_test.vvs")


def run(prog, variant: str, config: VMConfig | None = None, tty: bool = False, setup=None):
    """Run on ``variant``: "c" (compiled core, C print), "host" (compiled core, print
    taken out of its table) or "python" (reference core). Returns (stdout writes,
    stderr writes, the writes of both in order, the Machine)."""
    backend = "python" if variant == "python" else "cython"
    log: list = []
    out, err = Recorder(tty, log, "out"), Recorder(False, log, "err")
    config = config or VMConfig()
    config = config._replace(backend=backend)
    machine = Machine(prog, config, io.BytesIO(), out, err)
    if variant == "host":
        machine.core.remove_native(0x01)
    if setup is not None:
        setup(machine.core)
    try:
        machine.run()
    except Trap as trap:
        machine.io.flush()
        machine.io.report(trap.render())
    machine.io.flush()
    return out.writes, err.writes, log, machine


def same_everywhere(prog, **kwargs):
    """The three variants write the same bytes, in the same chunks and order; returns them."""
    results = {v: run(prog, v, **kwargs)[:3] for v in ("c", "host", "python")}
    assert results["c"] == results["host"] == results["python"]
    return results["c"]


NUMBERS = """
    uload r2 1
    uload r1 0
    ncall 1 r0
    uload r1 18446744073709551615
    ncall 1 r0
    iload r1 -9223372036854775808
    ncall 1 r0
    iload r1 -42
    ncall 1 r0
    iload r1 7
    ncall 1 r0
    fload r1 0.1
    ncall 1 r0
    fload r1 -0.0
    ncall 1 r0
    fload r1 1e21
    ncall 1 r0
    fload r1 1e-7
    ncall 1 r0
    fload r1 2.5
    ncall 1 r0
"""
NUMBERS_TEXT = (b"0\n18446744073709551615\n-9223372036854775808\n-42\n7\n0.1\n-0\n"
                b"1000000000000000000000\n0.0000001\n2.5\n")


def test_print_numbers_runs_in_c_without_leaving_the_loop():
    machine = Machine(program(NUMBERS), VMConfig(backend="cython"), io.BytesIO(), io.BytesIO(), io.BytesIO())
    assert 0x01 in machine.core.c_natives()
    assert machine.core.run() == Status.HALT          # ten prints, no NCALL exit
    machine.io.flush()
    assert machine.io.stdout.getvalue() == NUMBERS_TEXT


def test_print_numbers_same_bytes_on_every_path():
    out, err, _ = same_everywhere(program(NUMBERS))
    assert b"".join(out) == NUMBERS_TEXT and err == []


def test_print_special_floats():
    values = [5e-324, 1.7976931348623157e308, 1000000000000000.25, 2.0 ** 53, 2.0 ** 53 + 2,
              123456789.125, -1e-300, 9.999999999999999e22, 1e23, 0.3]
    body = "    uload r2 1\n" + "".join(f"    fload r1 {v!r}\n    ncall 1 r0\n" for v in values)
    out, _, _ = same_everywhere(program(body))
    assert b"".join(out).decode().split() == [format_f64(v) for v in values]
    assert b"1000000000000000.3\n" in b"".join(out)       # the tie goes away from zero


def test_float_text_matches_the_conformance_table():
    """Both float printers against the 12,631 doubles upstream prints (docs/semantics.md §10)."""
    table = conformance_dir("floats") / "f64_display.txt"
    rows = [line.split() for line in table.read_text().splitlines() if line.strip()]
    assert len(rows) == 12631
    core_class = compiled_core_class()
    core = core_class(program("    ncall 1 r0"), VMConfig())
    chunks: list[bytes] = []
    core.set_stdout(lambda data: chunks.append(data) or 65536)
    c_bad, py_bad = [], []
    for hex_bits, text in rows:
        bits = int(hex_bits, 16)
        core.ip = 0
        core.set_reg(1, bits, Tag.F64)
        core.set_reg(2, 1, Tag.U64)
        assert core.run() == Status.HALT
    lines = b"".join(chunks).decode().splitlines()
    for (hex_bits, text), line in zip(rows, lines, strict=True):
        if line != text:
            c_bad.append((hex_bits, text, line))
        python = format_f64(struct.unpack(">d", bytes.fromhex(hex_bits))[0])
        if python != text:
            py_bad.append((hex_bits, text, python))
    assert c_bad == [] and py_bad == []


def test_strings_and_stderr_keep_their_order_with_c_prints():
    prog = program("""
    uload r2 1
    uload r1 1
    ncall 1 r0
    dsload r1 hello 0
    uload r2 2
    ncall 1 r0
    uload r2 1
    iload r1 -2
    ncall 1 r0
    dsload r1 hello 0
    ncall 1 r0
    fload r1 3.5
    uload r2 2
    ncall 1 r0
    uload r2 1
    uload r1 4
    ncall 1 r0
    uload r2 7
    ncall 1 r0
    uload r2 1
    uload r1 5
    ncall 1 r0
""", '    hello str "hi"')
    _, _, log = same_everywhere(prog)
    merged = [(name, data.decode()) for name, data in log]
    assert merged[:3] == [("out", "1\n"), ("err", "hi\n"), ("out", "-2\nhi\n")]
    assert merged[3] == ("err", "3.5\n")
    assert merged[4] == ("out", "4\n")
    assert merged[5][0] == "err" and "stream 7" in merged[5][1]   # NativeFault diagnostic
    assert merged[6][0] == "err" and merged[6][1].startswith("voxvm: exception: NativeFault at ")
    assert merged[7] == ("out", "5\n")       # a C print never overtakes an exception line


LOTS = """
    uload r2 1
    uload r10 0
    uload r11 {n}
label again
    movr r1 r10
    ncall 1 r0
    {extra}
    uinc r10
    ucmp r10 r11
    jl @again
"""


def test_stdout_is_flushed_at_64_kib_as_before():
    prog = program(LOTS.format(n=30000, extra=""))
    out, _, _ = same_everywhere(prog)
    assert len(out) > 1 and all(len(chunk) >= 65536 for chunk in out[:-1])
    assert b"".join(out) == b"".join(b"%d\n" % i for i in range(30000))


def test_64_kib_flush_counts_what_python_natives_buffered():
    # A string (Python path) every 7th number: the room the C print gets shrinks accordingly.
    extra = "dsload r1 s 0\n    ncall 1 r0"
    prog = program(LOTS.format(n=20000, extra=extra), '    s str "abc"')
    out, _, _ = same_everywhere(prog)
    assert len(out) > 1


def test_interactive_stdout_is_flushed_after_every_print():
    out, _, _ = same_everywhere(program(NUMBERS), tty=True)
    assert out == [line + b"\n" for line in NUMBERS_TEXT.split(b"\n")[:-1]]


def test_prints_reach_stdout_before_a_trap_line():
    prog = program(LOTS.format(n=100, extra="") + "    pop r1")
    _, err, log = same_everywhere(prog)
    assert log[-1][0] == "err" and b"trap" in log[-1][1]
    assert b"".join(data for name, data in log if name == "out") == b"".join(b"%d\n" % i for i in range(100))


def test_gc_log_lines_keep_their_place_between_c_prints():
    body = """
    uload r2 1
    uload r10 0
    uload r11 40
label again
    alloc r5 64
    movr r1 r10
    ncall 1 r0
    uinc r10
    ucmp r10 r11
    jl @again
"""
    config = VMConfig(gc_log=True, gc_stress=True)

    def lines(variant):
        _, _, log, _ = run(program(body), variant, config=config)
        return [(name, b"pause" in data) for name, data in log]

    assert lines("c") == lines("host")


# --------------------------------------------------------------------------- the table itself

def test_unknown_code_still_reaches_python_and_raises_nativefault():
    prog = program("""
    ncall 0x2ab r0
    jexc @nativefault @caught
    halt
label caught
    uload r1 1
    uload r2 1
    ncall 1 r0
""")
    for variant in ("c", "python"):
        out, err, _, machine = run(prog, variant)
        assert b"".join(out) == b"1\n"
        assert b"ncall 0x2ab: No such callcode!" in b"".join(err)
        if variant == "c":
            assert 0x2AB not in machine.core.c_natives()


def _core(body: str, data: str = ""):
    return compiled_core_class()(program(body, data), VMConfig())


def test_c_entry_overrides_the_python_path():
    # Code 1 is print for the Python host; a C entry there runs instead of it.
    core = _core("    uload r1 5\n    uload r2 7\n    ncall 1 r0")
    core._install_test_native(0x01, "ffi_unsigned_add")
    assert core.run() == Status.HALT
    assert core.get_reg(0) == (12, Tag.U64)


def test_ffi_marshalling_upstream_example():
    # nconfigs/test.toml: r1 = U(5), r2 = U(7), ncall 0x100 -> r0 = U(12); an F argument
    # arrives as its IEEE bits (semantics.md §3.19; upstream.md §9.3 truncates it).
    core = _core("    uload r1 5\n    fload r2 7.9\n    iload r0 -1\n    ncall 0x100 r0")
    core._install_test_native(0x100, "ffi_unsigned_add")
    assert core.c_natives() == [0x100]
    assert core.run() == Status.HALT
    assert core.get_reg(0) == ((5 + f_bits(7.9)) & MASK, Tag.U64)


def test_ffi_result_with_a_bad_type_raises_invaliddatatype():
    core = _core("    iload r0 -3\n    ncall 0x101 r0")
    core._install_test_native(0x101, "ffi_bad_type")
    assert core.run() == Status.HALT
    assert core.pending() == {Exc.InvalidDataType: 1}
    assert core.get_reg(0) == ((-3) & MASK, Tag.I64)


def test_c_native_raises_into_the_pending_list():
    core = _core("""
    uload r1 8
    ncall 0x300 r0
    jexc @nativefault @caught
    uload r9 0
    halt
label caught
    uload r9 1
""")
    core._install_test_native(0x300, "raise")
    assert core.run() == Status.HALT
    assert core.get_reg(9) == (1, Tag.U64) and core.pending() == {}


def test_host_return_goes_to_python_with_nothing_changed():
    core = _core("    uload r1 3\n    ncall 0x301 r0\n    halt")
    core._install_test_native(0x301, "host")
    assert core.run() == Status.NCALL
    assert (core.ncall_code, core.ncall_ip, core.ip) == (0x301, 10, 14)


def test_trap_return_stops_at_the_ncall():
    core = _core("    uload r1 3\n    ncall 0x302 r0")
    core._install_test_native(0x302, "trap")
    assert core.run() == Status.TRAP
    assert (core.trap_kind, core.trap_ip, core.trap_a) == (TrapKind.NATIVE_ERROR, 10, 0x302)


def test_yield_returns_to_the_host_invisibly_and_keeps_the_budget():
    body = "    uload r0 0\n" + "    ncall 0x303 r0\n" * 5 + "    uload r3 0\n    jmp @end\nlabel end"
    core = _core(body)
    core._install_test_native(0x303, "yield")
    assert core.run(1) == Status.BUDGET                # the jmp is the one branch event
    assert core.get_reg(0) == (5, Tag.U64)
    assert core.run() == Status.HALT


def test_flags_a_native_writes_are_seen_by_the_loop():
    core = _core("""
    uload r1 0
    uload r5 1
    ucmp r5 r1
    ncall 0x304 r0
    jz @zero
    uload r9 2
    halt
label zero
    uload r9 1
""")
    core._install_test_native(0x304, "set_zf")
    assert core.run() == Status.HALT
    assert core.get_reg(9) == (1, Tag.U64)


def test_remove_native_and_bad_names():
    core = _core("    ncall 0x305 r0")
    core._install_test_native(0x305, "raise")
    core.remove_native(0x305)
    assert core.c_natives() == []
    assert core.run() == Status.NCALL
    with pytest.raises(ValueError):
        core._install_test_native(0x306, "no such native")
    with pytest.raises(ValueError):
        core.remove_native(0x10000)


def test_several_cores_have_their_own_tables():
    a = _core("    uload r1 5\n    uload r2 7\n    ncall 0x100 r0")
    b = _core("    uload r1 5\n    uload r2 7\n    ncall 0x100 r0")
    a._install_test_native(0x100, "ffi_unsigned_add")
    assert a.run() == Status.HALT and b.run() == Status.NCALL


# ---------------------------------------------------------------- put (0x08): print without the newline

PUT_LINE = """
    dsload r1 xeq 0
    uload r2 1
    ncall 0x08 r0
    iload r1 -5
    ncall 0x08 r0
    dsload r1 sep 0
    ncall 0x08 r0
    fload r1 2.5
    ncall 0x08 r0
    dsload r1 sep 0
    ncall 0x08 r0
    uload r1 7
    ncall 0x01 r0
"""


def test_put_writes_one_line_from_several_values_on_every_path():
    prog = program(PUT_LINE, '    xeq str "x = "\n    sep str ", "')
    out, err, _ = same_everywhere(prog)
    assert out == [b"x = -5, 2.5, 7\n"] and err == []


def test_put_numbers_run_in_c_and_print_and_put_codes_match_the_host():
    from voxvm.host.basic import PRINT, PUT
    from voxvm.host.registry import NATIVES

    assert (NATIVES[PRINT].name, NATIVES[PUT].name) == ("print", "put")
    machine = Machine(program("    uload r2 1\n    uload r1 12\n    ncall 0x08 r0\n    ncall 0x08 r0"),
                      VMConfig(backend="cython"), io.BytesIO(), io.BytesIO(), io.BytesIO())
    assert {PRINT, PUT} <= set(machine.core.c_natives())
    assert machine.core.run() == Status.HALT          # no NCALL exit: both puts ran in C
    machine.io.flush()
    assert machine.io.stdout.getvalue() == b"1212"


def test_put_on_a_terminal_is_flushed_at_once():
    writes, _, _, _ = run(program("    uload r2 1\n    uload r1 1\n    ncall 0x08 r0\n    ncall 0x08 r0"),
                          "c", tty=True)
    assert writes == [b"1", b"1"]


def test_put_with_a_bad_stream_is_a_native_fault_named_put():
    prog = program("    uload r2 3\n    uload r1 1\n    ncall 0x08 r0")
    for variant in ("c", "python"):
        out, err, _, machine = run(prog, variant)
        assert out == [] and b"".join(err).splitlines()[0] == (
            b"voxvm: ncall 0x8 (put): put: stream 3 is neither 1 (stdout) nor 2 (stderr)")
        assert machine.core.pending() == {int(Exc.NativeFault): 1}
