"""The machine driver, the natives and the core-dump viewer.

run_program's exit statuses and streams, the trap line, core dumps,
backend selection, ``-v``/``--gc-log`` reports, every built-in native's
register conventions and error paths (semantics.md §3 items 16 and 18), output
buffering order, and ``render_dump``.
"""

from __future__ import annotations

import io
import os

import pytest
from support.builders import build, item, utf16
from support.configs import config_for

from voxvm.config import VMConfig
from voxvm.dumpview import render_dump
from voxvm.errors import UsageError
from voxvm.formats import parse_dump
from voxvm.isa import Exc, Tag
from voxvm.machine import Machine, compiled_core_class, run_program, select_backend
from voxvm.program import Program, Symbols
from voxvm.traps import TrapKind

CONFIG = config_for("python")


def run(program: Program, stdin: bytes = b"", config: VMConfig = CONFIG) -> tuple[int, str, str]:
    out, err = io.BytesIO(), io.BytesIO()
    rc = run_program(program, config, io.BytesIO(stdin), out, err)
    return rc, out.getvalue().decode(), err.getvalue().decode()


def vm_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("voxvm:")]


def program_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("voxvm:")]


def printing(*setup, stream: int = 1, data=None) -> Program:
    """Set registers with ``setup`` instructions, then print r1 on ``stream`` and halt."""
    return build(*setup, ("uload", 2, stream), ("ncall", 1, 0), ("halt",), data=data)


# ---------------------------------------------------------------- exit status, trap line

def test_halt_exit_status_and_output():
    rc, out, err = run(printing(("uload", 1, 42)))
    assert (rc, out, err) == (0, "42\n", "")


def test_pending_exceptions_at_halt_are_ignored():
    rc, out, _ = run(build(("uload", 1, 0), ("free", 1), ("halt",)))
    assert rc == 0


def test_trap_line_names_mnemonic_function_and_source_line():
    image = build(("call", 0), ("halt",), "main:", ("uload", 1, 1), ("fload", 2, 1.0),
                  ("uadd", 1, 2), ("ret",), functions=("main",))
    symbols = Symbols(functions={0: "main"}, lines=((0, 2), (9, 3), (10, 6), (20, 7), (30, 8)),
                      source_path="prog.vvs")
    program = Program(image.image, functions=image.functions, symbols=symbols)
    rc, out, err = run(program)
    assert rc == 70 and out == ""
    assert err == ("voxvm: trap: type mismatch: uint64 + float64 at 0x1e (uadd) in main, prog.vvs:8\n"
                   "voxvm: backtrace (innermost first):\n"
                   "voxvm:   #0   0x001e in main, prog.vvs:8\n"
                   "voxvm:   #1   0x0000 in (top level), prog.vvs:2\n")


def test_trap_outside_the_image_has_no_mnemonic_or_function():
    program = build(("call", 0), ("halt",), "f:", ("jmp", 5000), functions=("f",))
    rc, _, err = run(program)
    assert rc == 70
    assert err == ("voxvm: trap: ip outside the image (length 19) at 0x1388\n"
                   "voxvm: backtrace (innermost first):\n"
                   "voxvm:   #0   0x1388 in (top level)\n"
                   "voxvm:   #1   0x0000 in (top level)\n")


def test_trap_line_from_assembled_source():
    voxasm = pytest.importorskip("voxasm")
    source = ("section text\n.start\n    call @main\n    halt\nfunc main\n"
              "    uload r1 1\n    pop r2\n    ret\n")
    program = voxasm.assemble_program(source, "t.vvs")
    rc, _, err = run(program)
    assert rc == 70
    assert err.splitlines() == ["voxvm: trap: pop from an empty data stack at 0x14 (pop) in main, t.vvs:7",
                                "voxvm: backtrace (innermost first):",
                                "voxvm:   #0   0x0014 in main, t.vvs:7",
                                "voxvm:   #1   0x0000 in (top level), t.vvs:3"]


def test_output_before_a_trap_is_kept():
    rc, out, err = run(build(("uload", 1, 5), ("uload", 2, 1), ("ncall", 1, 0), ("ret",)))
    assert (rc, out) == (70, "5\n")
    assert vm_lines(err) == ["voxvm: trap: ret with an empty call stack at 0x18 (ret)"]


def test_an_internal_backend_error_is_one_line_not_a_traceback(monkeypatch):
    from voxvm.backends.reference import core as pyvm

    def broken(self, budget=-1):
        raise KeyError("boom")

    monkeypatch.setattr(pyvm.PyCore, "run", broken)
    monkeypatch.delenv("VOXVM_DEBUG", raising=False)
    rc, out, err = run(build(("halt",)))
    assert rc == 70
    assert len(err.splitlines()) == 1 and err.startswith("voxvm: internal error: KeyError")


# ---------------------------------------------------------------- core dumps

def test_coredump_after_halt(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    program = build(("iload", 3, -7), ("push", 3), ("alloc", 4, 8), ("halt",))
    rc, _, _ = run(program, config=VMConfig(backend="python", coredump_exit=True))
    assert rc == 0
    dump = parse_dump((tmp_path / "voxvm.dump").read_bytes())
    assert dump.reason == 0 and dump.trap == 0 and dump.ip == 22
    assert dump.registers[3] == ((-7) & (2**64 - 1), Tag.I64)
    assert dump.data_stack == [((-7) & (2**64 - 1), Tag.I64)]
    assert dump.memory == program.image
    assert [(a, n, k) for a, n, k, _ in dump.heap] == [(16, 8, 0)]
    assert not (tmp_path / "voxvm_err.dump").exists()


def test_coredump_after_trap(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, _, _ = run(build(("uload", 1, 0), ("free", 1), ("pop", 1)),
                   config=VMConfig(backend="python", coredump_exit=True))
    assert rc == 70
    dump = parse_dump((tmp_path / "voxvm_err.dump").read_bytes())
    assert (dump.reason, dump.trap, dump.ip) == (1, TrapKind.STACK_UNDERFLOW, 12)
    assert dump.pending == {Exc.HeapFreeFault: 1}
    text = render_dump(dump)
    assert "STACK_UNDERFLOW" in text and "HeapFreeFault (3)" in text and "ip: 0xc (pop)" in text


def test_no_dump_without_the_flag(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(build(("halt",)))
    assert list(tmp_path.iterdir()) == []


def test_unwritable_dump_is_a_warning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "voxvm.dump").mkdir()
    rc, out, err = run(printing(("uload", 1, 1)), config=VMConfig(backend="python", coredump_exit=True))
    assert (rc, out) == (0, "1\n")
    assert vm_lines(err) and vm_lines(err)[0].startswith("voxvm: warning: cannot write core dump")


def test_render_dump_shows_values_and_heap():
    program = build(("fload", 1, 2.5), ("alloc", 2, 4), ("uload", 3, 0x41424344), ("uload", 4, 4),
                    ("store", 2, 3, 4), ("halt",))
    machine = Machine(program, CONFIG, io.BytesIO(), io.BytesIO(), io.BytesIO())
    machine.run()
    text = render_dump(machine.core.snapshot(0))
    assert "r1  = 0x4004000000000000  float64 2.5" in text
    assert "r2  = 0x0000000000000010  address 0x10" in text
    assert "block 0x10: 4 bytes (gc)" in text and "|ABCD|" in text
    assert text.startswith("voxvm core dump: program halted\nip: 0x") and text.endswith("\n")


# ---------------------------------------------------------------- backend selection, reports

def test_backend_selection(monkeypatch):
    monkeypatch.delenv("VOXVM_BACKEND", raising=False)
    default = "cython" if compiled_core_class() is not None else "python"
    assert select_backend(VMConfig()) == default
    assert select_backend(VMConfig(backend="python")) == "python"
    monkeypatch.setenv("VOXVM_BACKEND", "Python")
    assert select_backend(VMConfig()) == "python"
    monkeypatch.setenv("VOXVM_BACKEND", "java")
    with pytest.raises(UsageError):
        select_backend(VMConfig())


def test_cython_backend_missing_is_a_usage_error():
    if compiled_core_class() is not None:
        pytest.skip("the compiled core is built")
    with pytest.raises(UsageError):
        Machine(build(("halt",)), VMConfig(backend="cython"))


def test_verbose_and_gc_log_go_to_stderr_only():
    program = printing(("alloc", 5, 8), ("alloc", 5, 8), ("uload", 1, 9))
    rc, out, err = run(program, config=VMConfig(backend="python", verbose=True, gc_stress=True))
    assert (rc, out) == (0, "9\n")
    lines = vm_lines(err)
    assert lines[0].startswith("voxvm: backend python; image ")
    assert sum(line.startswith("voxvm: gc: collection") for line in lines) == 2
    rc, _, err = run(program, config=VMConfig(backend="python", gc_stress=True))
    assert err == ""
    rc, _, err = run(program, config=VMConfig(backend="python", gc_stress=True, gc_log=True))
    assert len(vm_lines(err)) == 2


# ---------------------------------------------------------------- print

DATA = {"s": item(4, utf16("héllo wörld ✓")), "bad": item(4, b"\xd8\x00\x00A")}


@pytest.mark.parametrize("setup,expected", [
    ((("uload", 1, 2**64 - 1),), "18446744073709551615"),
    ((("iload", 1, -(2**63)),), "-9223372036854775808"),
    ((("fload", 1, 1e21),), "1000000000000000000000"),
    ((("fload", 1, -0.0),), "-0"),
    ((("dsload", 1, "%s", 0),), "héllo wörld ✓"),
    ((("dslea", 1, "%s", 0),), "VM Data segment address: 0x21"),
    ((("uload", 1, 0x20), ("utop", 1, 1)), "VM Heap address: 0x20"),
])
def test_print_by_tag(setup, expected):
    rc, out, err = run(printing(*setup, data=DATA))
    assert (rc, out, err) == (0, expected + "\n", "")


def _heap_text_program(count_setup) -> Program:
    text = "Hi!?"
    return build(("alloc", 1, 8), ("uload", 5, int.from_bytes(utf16(text), "big")), ("uload", 6, 8),
                 ("store", 1, 5, 6), *count_setup, ("uload", 2, 1), ("ncall", 1, 0), ("halt",))


def test_print_heap_string_needs_a_uint_count_in_r3():
    assert run(_heap_text_program([("uload", 3, 8)]))[1] == "Hi!?\n"
    assert run(_heap_text_program([("uload", 3, 7)]))[1] == "Hi!\n"      # odd byte dropped
    assert run(_heap_text_program([("iload", 3, 8)]))[1] == "VM Heap address: 0x10\n"
    assert run(_heap_text_program([("uload", 3, 0)]))[1] == "VM Heap address: 0x10\n"
    rc, out, err = run(_heap_text_program([("uload", 3, 9)]))
    assert out == "VM Heap address: 0x10\n"
    assert vm_lines(err) == ["voxvm: print: Failed to read bytes [0x10]:[0x19]"]


def test_put_names_itself_in_its_diagnostics():
    text_program = build(("alloc", 1, 8), ("uload", 3, 9), ("uload", 2, 1), ("ncall", 8, 0), ("halt",))
    rc, out, err = run(text_program)
    assert out == "VM Heap address: 0x10"
    assert vm_lines(err) == ["voxvm: put: Failed to read bytes [0x10]:[0x19]"]


def test_print_invalid_utf16_prints_nothing_and_raises_nothing():
    program = build(("dsload", 1, "%bad", 0), ("uload", 2, 1), ("ncall", 1, 0),
                    ("jexc", Exc.NativeFault, 0), ("halt",), data=DATA)
    rc, out, err = run(program)
    assert (rc, out) == (0, "")
    assert len(vm_lines(err)) == 1 and "not valid UTF-16" in err


def test_print_to_stderr_and_bad_streams():
    program = build(("uload", 1, 7), ("uload", 2, 2), ("ncall", 1, 0),
                    ("uload", 2, 3), ("ncall", 1, 0),
                    ("fload", 2, 1.0), ("ncall", 1, 0),         # F(1.0) is not stream 1
                    ("halt",))
    core_rc, out, err = run(program)
    assert out == "" and program_lines(err) == ["7"]
    reasons = [line for line in vm_lines(err) if not line.startswith("voxvm: exception")]
    assert len(reasons) == 2 and "stream 3" in reasons[0]
    assert vm_lines(err)[-1] == "voxvm: exceptions pending at halt: NativeFault 2"
    machine = Machine(program, CONFIG, io.BytesIO(), io.BytesIO(), io.BytesIO())
    machine.run()
    assert machine.core.pending() == {Exc.NativeFault: 2}


@pytest.mark.parametrize("address", [5000, 3, 12])
def test_print_string_outside_memory_is_a_native_fault(address):
    # A StrAddr made with load type 4: beyond memory, below 8, or with a length
    # field (the 8 bytes before it, here code) that runs past the end.
    program = build(("alloc", 8, 8), ("uload", 5, address), ("uload", 6, 8), ("store", 8, 5, 6),
                    ("uload", 7, 4), ("load", 7, 1, 8, 6), ("uload", 2, 1), ("ncall", 1, 0),
                    ("halt",))
    err = io.BytesIO()
    machine = Machine(program, CONFIG, io.BytesIO(), out := io.BytesIO(), err)
    machine.run()
    assert machine.core.pending() == {Exc.NativeFault: 1}
    assert out.getvalue() == b""
    assert err.getvalue().startswith(b"voxvm: ncall 0x1 (print): print: ")


def test_stdout_is_flushed_before_stderr_output():
    shared = io.BytesIO()
    program = build(("uload", 1, 1), ("uload", 2, 1), ("ncall", 1, 0), ("uload", 1, 2),
                    ("uload", 2, 2), ("ncall", 1, 0), ("uload", 1, 3), ("uload", 2, 1),
                    ("ncall", 1, 0), ("halt",))
    assert run_program(program, CONFIG, io.BytesIO(), shared, shared) == 0
    assert shared.getvalue() == b"1\n2\n3\n"


def test_text_streams_are_accepted():
    out, err = io.StringIO(), io.StringIO()
    assert run_program(printing(("fload", 1, 0.5)), CONFIG, io.BytesIO(), out, err) == 0
    assert out.getvalue() == "0.5\n"


class _BrokenPipe(io.RawIOBase):
    def writable(self):
        return True

    def write(self, data):
        raise BrokenPipeError(32, "Broken pipe")


def test_unwritable_stdout_ends_with_status_74():
    err = io.BytesIO()
    rc = run_program(printing(("uload", 1, 1)), CONFIG, io.BytesIO(), _BrokenPipe(), err)
    assert rc == 74
    assert err.getvalue().decode().startswith("voxvm: error: cannot write to stdout")


@pytest.mark.parametrize("flag", [dict(trace=True), dict(profile="-"), dict(gc_log=True, gc_stress=True)])
@pytest.mark.parametrize("backend", ["python", "cython"])
def test_unwritable_stdout_ends_with_74_when_a_stderr_line_found_it_first(backend, flag):
    # Trace, profile and GC lines flush stdout before each line, and a failure there was
    # swallowed: `voxvm --trace run hello.vvs >/dev/full` exited 0 with its output lost, and
    # `voxvm --trace run endless.vvs | head -1` printed on forever (voxvm/host/io.py flush).
    if backend == "cython" and compiled_core_class() is None:
        pytest.skip("the compiled core is not built")
    import voxasm

    program = voxasm.assemble_program("section text\n.start\n    uload r1 7\n    uload r2 1\n"
                                      "    ncall 0x01 r0\n    alloc r5 16\n    halt\n")
    err = io.BytesIO()
    assert run_program(program, VMConfig(backend=backend, **flag), io.BytesIO(), _BrokenPipe(), err) == 74
    assert b"voxvm: error: cannot write to stdout" in err.getvalue()


# ---------------------------------------------------------------- other natives

def _input_program(limit: int, calls: int = 1, buffer: int = 64) -> Program:
    code = [("alloc", 10, buffer)]
    for n in range(calls):
        code += [("movr", 1, 10), ("uload", 2, limit), ("ncall", 2, 0), ("movr", 20 + n, 0)]
    return build(*code, ("halt",))


def test_input_reads_whole_lines_as_utf16():
    machine = Machine(_input_program(64, calls=3), CONFIG, io.BytesIO("hé\nlast".encode()),
                      io.BytesIO(), io.BytesIO())
    machine.run()
    core = machine.core
    assert core.get_reg(20) == (6, Tag.U64)           # "hé\n": 3 units, newline included
    assert core.get_reg(21) == (8, Tag.U64)           # "last" without a newline at EOF
    assert core.get_reg(22) == (0, Tag.U64)           # end of input
    assert core.heap_read(core.get_reg(10)[0], 8) == utf16("last")


def test_input_respects_the_limit_and_flushes_stdout_first():
    seen = []

    class Stdin(io.BytesIO):
        def readline(self, *args):
            seen.append(out.getvalue())
            return super().readline(*args)

    out = io.BytesIO()
    program = build(("uload", 1, 5), ("uload", 2, 1), ("ncall", 1, 0), ("alloc", 1, 8),
                    ("uload", 2, 3), ("ncall", 2, 0), ("halt",))
    machine = Machine(program, CONFIG, Stdin(b"abc\n"), out, io.BytesIO())
    machine.run()
    assert seen and set(seen) == {b"5\n"}       # stdout was flushed before any read
    assert machine.core.get_reg(0) == (2, Tag.U64)             # limit 3: one whole character
    assert machine.core.heap_read(machine.core.get_reg(1)[0], 4) == b"\x00a\x00\x00"


class CountingStdin(io.RawIOBase):
    """An endless stdin without newlines (like /dev/zero) that counts what was taken from it."""

    def __init__(self, byte: bytes = b"x") -> None:
        self.byte, self.taken = byte, 0

    def readable(self) -> bool:
        return True

    def readline(self, size: int = -1) -> bytes:
        assert 0 < size <= 1 << 20, f"unbounded read ({size})"
        self.taken += size
        return self.byte * size


def test_input_reads_only_what_fits_from_an_endless_line():
    stdin = CountingStdin()
    program = build(("alloc", 1, 64), ("uload", 2, 64), ("ncall", 2, 0), ("halt",))
    machine = Machine(program, CONFIG, stdin, io.BytesIO(), io.BytesIO())
    machine.run()
    assert machine.core.get_reg(0) == (64, Tag.U64)
    assert stdin.taken <= 64


def test_the_rest_of_a_long_line_stays_for_the_next_input():
    program = build(("alloc", 1, 8), ("uload", 2, 4), ("ncall", 2, 0), ("movr", 10, 0),
                    ("alloc", 1, 64), ("uload", 2, 64), ("ncall", 2, 0), ("halt",))
    machine = Machine(program, CONFIG, io.BytesIO("aé€😀bc\nnext\n".encode()), io.BytesIO(),
                      io.BytesIO())
    machine.run()
    assert machine.core.get_reg(10) == (4, Tag.U64)                  # "aé"
    rest = "€😀bc\n".encode("utf-16-be")
    assert machine.core.get_reg(0) == (len(rest), Tag.U64)
    assert machine.core.heap_read(machine.core.get_reg(1)[0], len(rest)) == rest


def test_input_write_failure():
    machine = Machine(_input_program(64, buffer=2), CONFIG, io.BytesIO(b"abc\n"), io.BytesIO(),
                      io.BytesIO())
    machine.run()
    assert machine.core.get_reg(20) == (0, Tag.U64)
    assert machine.core.pending() == {Exc.HeapWriteFault: 1}


def test_random_and_time_natives_tag_their_results():
    program = build(("ncall", 3, 0), ("movr", 10, 0), ("iload", 1, -5), ("iload", 2, -4),
                    ("ncall", 4, 0), ("movr", 11, 0), ("ncall", 5, 0), ("movr", 12, 0),
                    ("uload", 1, 2), ("ncall", 6, 0), ("halt",))
    machine = Machine(program, CONFIG, io.BytesIO(), io.BytesIO(), io.BytesIO())
    machine.run()
    core = machine.core
    assert core.get_reg(10)[1] == Tag.F64
    assert core.get_reg(11) == ((-5) & (2**64 - 1), Tag.I64)
    assert core.get_reg(12)[1] == Tag.I64 and core.get_reg(12)[0] > 1_600_000_000


def test_randint_with_an_empty_range_is_a_native_fault():
    program = build(("uload", 0, 77), ("iload", 1, 3), ("iload", 2, 3), ("ncall", 4, 0), ("halt",))
    machine = Machine(program, CONFIG, io.BytesIO(), io.BytesIO(), err := io.BytesIO())
    machine.run()
    assert machine.core.get_reg(0) == (77, Tag.U64)
    assert machine.core.pending() == {Exc.NativeFault: 1}
    assert err.getvalue().startswith(b"voxvm: ncall 0x4 (randint): ")


def test_unknown_ncall_and_internal_native_errors():
    program = build(("ncall", 0x7777, 0), ("ncall", 0x4242, 0), ("halt",))
    err = io.BytesIO()
    machine = Machine(program, CONFIG, io.BytesIO(), io.BytesIO(), err)

    def broken(core, host):
        raise ZeroDivisionError("oops")

    machine.io.extra_natives[0x4242] = ("broken", broken)
    machine.run()
    assert machine.core.pending() == {Exc.NativeFault: 2}
    lines = err.getvalue().decode().splitlines()
    assert "No such callcode!" in lines[0] and lines[0].startswith("voxvm: ncall 0x7777")
    assert lines[1:] == ["voxvm: exception: NativeFault at 0x0 (ncall)",       # each reason, then its raise
                         "voxvm: ncall 0x4242 (broken): internal error: ZeroDivisionError: oops",
                         "voxvm: exception: NativeFault at 0x4 (ncall)"]


def test_runs_are_independent(tmp_path):
    program = printing(("uload", 1, 3))
    assert run(program) == run(program) == (0, "3\n", "")
    assert os.getcwd() != str(tmp_path)


def test_not_enough_host_memory_is_a_clean_error(monkeypatch):
    from voxvm.backends.reference import core as pyvm
    from voxvm.errors import VoxError

    def no_memory(self, program, config, log=None):
        raise MemoryError

    monkeypatch.setattr(pyvm.PyCore, "__init__", no_memory)
    with pytest.raises(VoxError, match="not enough memory"):
        run(build(("halt",)))


def test_heap_growth_failure_is_an_allocation_fault():
    import errno
    import mmap

    from voxvm.backends.reference import heap as pyheap

    heap = pyheap.PyHeap(64, 1 << 20)

    class NoMemory(mmap.mmap):
        """An arena the host refuses to grow (mremap fails with ENOMEM)."""

        def resize(self, _length):
            raise OSError(errno.ENOMEM, "Cannot allocate memory")

    arena = NoMemory(-1, len(heap.data))
    arena[:] = heap.data[:]
    heap.data = arena
    assert heap.alloc(1000) == 0
    assert heap.size == 64
    heap.check()
    assert heap.alloc(16) == pyheap.FIRST_BLOCK         # what fits still fits


def test_native_configs_loads_ffi_libraries_before_the_run(tmp_path, backend):
    # docs/ffi.md; tests/host/test_ffi.py has the details (examples, every load error).
    import io
    import sys

    from voxasm import assemble_program as assemble
    from voxvm.config import VMConfig
    from voxvm.machine import run_program

    if not sys.platform.startswith("linux"):
        pytest.skip("the config names libc.so.6")
    (tmp_path / "c.toml").write_text('name = "libc"\nlib_filename_linux = "libc.so.6"\n'
                                     '[functions.labs]\nname = "labs"\nncall_code = 0x300\n'
                                     'signature = "i64(i64)"\n')
    program = assemble(".start\n  iload r1 -42\n  ncall 0x300 r0\n  movr r1 r0\n  uload r2 1\n"
                       "  ncall 1 r0\n  halt\n", "n.vvs")
    out, err = io.BytesIO(), io.BytesIO()
    rc = run_program(program, VMConfig(native_configs=str(tmp_path), backend=backend),
                     stdin=io.BytesIO(), stdout=out, stderr=err)
    assert (rc, out.getvalue(), err.getvalue()) == (0, b"42\n", b"")


def test_a_popall_short_of_entries_says_how_many_it_needs():
    from voxvm.traps import describe

    assert describe(TrapKind.STACK_UNDERFLOW, 31, 1) == "popall needs 31 entries on the data stack, which holds 1"
    assert describe(TrapKind.STACK_UNDERFLOW, 0, 0) == "pop from an empty data stack"
