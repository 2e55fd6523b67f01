"""The Python embedding API (voxvm/embed.py, voxasm.assemble; docs/api.md).

Every expectation runs on every backend. The API must say what the command
line says: the same diagnostics, the same trap line, the same bytes.
"""

from __future__ import annotations

import io
import subprocess
import threading
import time
import sys
from pathlib import Path

import pytest

import voxasm
import voxvm
from voxvm import Exc, Tag
from voxvm.traps import TrapKind

HELLO = """\
section text
.start
    dsload r1 msg 0
    uload r2 1
    ncall 0x01 r0
    iload r5 -7
    fload r6 2.5
    halt
section data
    msg str "hello"
"""

NESTED_TRAP = """\
section text
.start
    call @outer
    halt
func outer
    call @inner
    ret
func inner
    uload r1 1
    fload r2 1.5
    iload r3 2
    uadd r3 r2
    ret
"""

LOOP = """\
section text
.start
    uload r10 0
label again
    dsload r1 dot 0
    uload r2 1
    ncall 0x08 r0
    jmp @again
section data
    dot str "."
"""


def test_assemble_returns_the_bytes_voxasm_writes(tmp_path):
    data = voxasm.assemble(HELLO, filename="hello.vvs")
    src = tmp_path / "hello.vvs"
    src.write_text(HELLO)
    subprocess.run([sys.executable, "-m", "voxasm", "hello.vvs"], cwd=tmp_path, check=True, timeout=60)
    assert data == (tmp_path / "hello.vve").read_bytes()
    assert voxasm.assemble(HELLO, format="vvr") == voxvm.load(data).image


def test_an_assembly_error_carries_the_command_line_diagnostics(tmp_path):
    source = "section text\n.start\n    uloda r1 5\n    uload r99 1\n"
    with pytest.raises(voxvm.AssemblyError) as caught:
        voxasm.assemble(source, filename="bad.vvs")
    error = caught.value
    assert isinstance(error, voxvm.VoxError) and error.exit_status == 65
    assert [d.headline for d in error.diagnostics] == [
        "bad.vvs:3:5: error: unknown mnemonic 'uloda'",
        "bad.vvs:4:11: error: 'r99' is not a register (r0..r31)"] or len(error.diagnostics) == 2
    assert str(error).startswith("bad.vvs:3:5: error: unknown mnemonic 'uloda'")
    (tmp_path / "bad.vvs").write_text(source)
    cli = subprocess.run([sys.executable, "-m", "voxasm", "bad.vvs"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert cli.returncode == 65 and cli.stderr == error.render() + "\n"
    assert [line for line in cli.stderr.splitlines() if ": error: " in line] == [
        d.headline for d in error.diagnostics]


def test_load_takes_bytes_paths_and_source_files(tmp_path):
    data = voxasm.assemble(HELLO, filename="hello.vvs")
    (tmp_path / "hello.vve").write_bytes(data)
    (tmp_path / "hello.vvs").write_text(HELLO)
    from_bytes, from_vve, from_vvs = (voxvm.load(data), voxvm.load(tmp_path / "hello.vve"),
                                      voxvm.load(str(tmp_path / "hello.vvs")))
    assert from_bytes.image == from_vve.image == from_vvs.image
    assert voxvm.load(from_vvs) is from_vvs
    assert from_vvs.symbols is not None          # source gives lines for trap messages


def test_load_refuses_malformed_bytes_with_the_format_error_of_the_command_line(tmp_path):
    with pytest.raises(voxvm.FormatError) as caught:
        voxvm.load(b"VVE\x00garbage", filename="bad.vve")
    assert caught.value.exit_status == 65 and str(caught.value).startswith("bad.vve: ")
    (tmp_path / "bad.vve").write_bytes(b"VVE\x00garbage")
    cli = subprocess.run([sys.executable, "-m", "voxvm", "--vve=bad.vve"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert cli.returncode == 65 and cli.stderr == caught.value.render() + "\n"
    with pytest.raises(voxvm.UsageError):
        voxvm.load(12)          # type: ignore[arg-type]
    with pytest.raises(voxvm.VoxError) as missing:
        voxvm.load(tmp_path / "missing.vve")
    assert missing.value.exit_status == 74


def test_a_run_captures_output_registers_and_pending(backend):
    result = voxvm.Machine(voxasm.assemble(HELLO, filename="hello.vvs"), backend=backend).run()
    assert (result.exit_status, result.stdout, result.stderr, result.trap) == (0, b"hello\n", b"", None)
    assert result.ok and result.check() is result
    assert result.registers[5] == voxvm.Value((1 << 64) - 7, Tag.I64) and result.registers[5].value == -7
    assert result.registers[6].tag == Tag.F64 and result.registers[6].value == 2.5
    assert result.registers[1].tag == Tag.STR and len(result.registers) == 32
    assert result.pending == {}


def test_a_trap_is_in_the_result_with_the_command_line_line_and_a_backtrace(backend, tmp_path, monkeypatch):
    (tmp_path / "t.vvs").write_text(NESTED_TRAP)
    monkeypatch.chdir(tmp_path)
    result = voxvm.Machine("t.vvs", backend=backend).run()
    assert result.exit_status == 70 and not result.ok
    trap = result.trap
    assert isinstance(trap, voxvm.Trap)
    assert trap.kind is TrapKind.TYPE_MISMATCH and repr(trap.kind) == "<TrapKind.TYPE_MISMATCH: 5>"
    cli = subprocess.run([sys.executable, "-m", "voxvm", "run", "t.vvs", f"--backend={backend}"],
                         cwd=tmp_path, capture_output=True, timeout=60)
    assert cli.returncode == 70 and result.stderr == cli.stderr
    assert [(f.function, f.line) for f in result.backtrace] == [("inner", 12), ("outer", 6), (None, 3)]
    assert trap.backtrace == result.backtrace
    with pytest.raises(voxvm.Trap):
        result.check()


def test_stdin_and_pending_exceptions(backend):
    source = """\
section text
.start
    alloc r10 16
    movr r1 r10
    uload r2 16
    ncall 0x02 r0
    movr r1 r10
    movr r3 r0
    uload r2 1
    ncall 0x08 r0
    uload r1 0
    uload r2 0
    udiv r3 r1 r2
    halt
"""
    machine = voxvm.Machine(voxasm.assemble(source), backend=backend)
    first, second = machine.run(stdin=b"hi\n"), machine.run(stdin="yo\n")
    assert (first.stdout, second.stdout) == (b"hi\n", b"yo\n")      # each run is a fresh VM
    assert first.pending == {Exc.ZeroDivision: 1}


def test_max_steps_counts_branch_events_across_native_calls(backend):
    machine = voxvm.Machine(voxasm.assemble(LOOP), backend=backend)
    with pytest.raises(voxvm.RunLimitExceeded) as caught:
        machine.run(max_steps=5)
    assert caught.value.reason == "max_steps"
    # put, jmp five times: the run stops right after the fifth jump (semantics.md §20), and the
    # budget is not restarted by the five native calls in between.
    assert caught.value.result.stdout == b"....."
    assert "did not halt within 5 branch events" in str(caught.value)


@pytest.mark.parametrize("steps", [1023, 1024, 1025, 3000])
def test_max_steps_is_exact_across_poll_windows_and_native_calls(backend, steps):
    # The compiled loop counts a budget down in windows of 1024 branch events, polling
    # between them, and returns to the host for output: the count must go on exactly.
    machine = voxvm.Machine(voxasm.assemble(LOOP), backend=backend)
    with pytest.raises(voxvm.RunLimitExceeded) as caught:
        machine.run(max_steps=steps)
    assert caught.value.result.stdout == b"." * steps


def test_timeout_stops_an_endless_program(backend):
    machine = voxvm.Machine(voxasm.assemble("section text\n.start\nlabel l\n    jmp @l\n"), backend=backend)
    with pytest.raises(voxvm.RunLimitExceeded) as caught:
        machine.run(timeout=0.2)
    assert caught.value.reason == "timeout" and caught.value.result.exit_status == 124
    assert caught.value.exit_status == 124       # the error's status is the result's (docs/api.md "Errors")


CALLS_NATIVE = """\
section text
.start
    uload r1 40
    iload r2 2
    ncall 0x300 r0
    movr r1 r0
    uload r2 1
    ncall 0x01 r0
    dsload r1 name 0
    ncall 0x301 r0
    jexc @nativefault @failed
    halt
label failed
    ncall 0x302 r0
    halt
section data
    name str "world"
"""


def test_python_natives(backend):
    machine = voxvm.Machine(voxasm.assemble(CALLS_NATIVE), backend=backend)
    seen: list[str] = []

    @machine.native(0x300)
    def add(call: voxvm.NativeCall):
        a, b = call.args[:2]
        return a.value + b.value

    @machine.native(0x301)
    def greet(call):
        seen.append(call.string(1))
        raise voxvm.NativeError(f"no greeting for {call.string(1)}")

    @machine.native(0x302, name="report")
    def report(call):
        call.write("caught\n")

    result = machine.run()
    assert result.stdout == b"42\ncaught\n" and seen == ["world"]
    assert result.stderr == (b"voxvm: ncall 0x301 (greet): no greeting for world\n"
                             b"voxvm: exception: NativeFault at 0x3b (ncall)\n")    # semantics.md §9
    assert result.registers[0] == voxvm.Value(42, Tag.U64)


def test_an_exception_in_a_python_native_propagates(backend):
    machine = voxvm.Machine(voxasm.assemble(CALLS_NATIVE), backend=backend)
    machine.native(0x300)(lambda call: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        machine.run()


def test_usage_errors_have_the_command_line_messages():
    program = voxasm.assemble(HELLO)
    with pytest.raises(voxvm.UsageError, match="unknown run option 'init_rma'"):
        voxvm.Machine(program, init_rma="1MB")
    with pytest.raises(voxvm.UsageError) as bad_size:
        voxvm.Machine(program, init_ram="lots")
    assert str(bad_size.value) == "--init-ram: 'lots' is not a size (examples: 4096, 64KB, 1.5MB, 1GB)"
    machine = voxvm.Machine(program)
    for code in (0x01, 0x08, 0x30, 0x10000):
        with pytest.raises(voxvm.UsageError):
            machine.native(code)
    with pytest.raises(voxvm.UsageError):
        machine.run(max_steps=0)
    # Wrong types are usage errors too, not a traceback or a silent surprise (bytes(3) would be
    # three NUL bytes of input).
    for bad, message in ((dict(stdin=3), "stdin: expected bytes, text or a binary file, not int"),
                         (dict(timeout="1"), "timeout: '1' is not a positive number of seconds"),
                         (dict(timeout=float("inf")), "timeout: inf is not a positive number of seconds"),
                         (dict(max_steps=True), "max_steps: True is not a positive integer"),
                         (dict(max_steps=2**80), "max_steps: 1208925819614629174706176 is not a positive")):
        with pytest.raises(voxvm.UsageError) as caught:
            machine.run(**bad)
        assert str(caught.value).startswith(message)
    assert machine.run(stdin=memoryview(b"x"), timeout=30, max_steps=10**6).exit_status == 0
    assert voxvm.Machine.from_flags(program, ["--seed=3", "--init-ram=1MB"]).config.init_ram == 1 << 20
    with pytest.raises(voxvm.UsageError):
        voxvm.Machine.from_flags(program, ["--bogus"])


@pytest.mark.parametrize("option, message", [
    (dict(shm=4096), "shm: expected a text such as '64KB' or '64KB:PATH', or a list of them, not 4096"),
    (dict(allow_net=5), "allow_net: expected a text such as 'HOST:PORT,...', or a list of them, not 5"),
    (dict(native_configs=b"/tmp"), "native_configs: expected a text, not b'/tmp'"),
    (dict(init_ram=b"64KB"), "init_ram: expected an int or a text such as '64KB', not b'64KB'"),
    (dict(seed=1.5), "seed: expected an int or a text such as '3', not 1.5"),
    (dict(verbose="false"), "verbose: expected True or False, not 'false'"),
])
def test_a_run_option_of_the_wrong_type_is_a_usage_error(option, message):
    # not a TypeError from inside the run, and not a switch that "false" turns on
    with pytest.raises(voxvm.UsageError) as caught:
        voxvm.Machine(voxasm.assemble(HELLO), **option)
    assert str(caught.value) == message


def test_run_options_take_python_values_where_the_flag_takes_text(tmp_path):
    config = voxvm.Machine(voxasm.assemble(HELLO), init_ram=1 << 20, allow_net=True, profile=True,
                           allow_read=[str(tmp_path), tmp_path / "b"], sandbox=True,
                           native_configs=None, debug_map=tmp_path / "m.map", shm=["4096", "8KB"]).config
    assert (config.init_ram, config.allow_net, config.profile) == (1 << 20, "*", "-")      # the bare flags
    assert config.allow_read == f"{tmp_path},{tmp_path / 'b'}" and config.debug_map == str(tmp_path / "m.map")
    assert [spec.size for spec in config.shm] == [4096, 8192]


def test_the_package_is_typed():
    root = Path(voxvm.__file__).parent
    assert (root / "py.typed").exists() and (Path(voxasm.__file__).parent / "py.typed").exists()


# ---------------------------------------------------------------- threads the program spawns

def _spawning(worker: str, main_after: str = "") -> str:
    """A program that spawns ``worker`` (r1 = 0) and halts (after ``main_after``)."""
    return ("section text\n.start\n    fnstind r1 @worker\n    uload r2 0\n    ncall 0x30 r0\n"
            f"{main_after}    halt\nfunc worker\n{worker}")


SPAWNED_TRAP = _spawning("    uload r1 1\n    fload r2 1.5\n    uadd r1 r2\n    ret\n")
SPAWNED_PRINT = _spawning("    uload r1 50\n    ncall 0x06 r0\n    uload r1 99\n    uload r2 1\n"
                          "    ncall 0x01 r0\n    ret\n")
SPAWNED_LOOP = _spawning("label spin\n    jmp @spin\n")
SPAWNED_NATIVE = _spawning("    ncall 0x300 r0\n    ret\n",
                           "    movr r1 r0\n    ncall 0x31 r0\n    movr r1 r0\n    uload r2 1\n    ncall 0x01 r0\n")


@pytest.mark.parametrize("source, status", [(SPAWNED_TRAP, 70), (SPAWNED_PRINT, 0)])
def test_a_run_waits_for_the_threads_it_spawns_like_the_command_line(backend, tmp_path, monkeypatch,
                                                                    source, status):
    # docs/concurrency.md: the run waits for every thread, and its status is the first failure.
    (tmp_path / "s.vvs").write_text(source)
    monkeypatch.chdir(tmp_path)
    result = voxvm.Machine("s.vvs", backend=backend).run()
    cli = subprocess.run([sys.executable, "-m", "voxvm", "run", "s.vvs", f"--backend={backend}"],
                         cwd=tmp_path, capture_output=True, timeout=60)
    assert (result.exit_status, result.stdout, result.stderr) == (status, cli.stdout, cli.stderr)
    assert cli.returncode == status and (status == 0 or b"thread 1: trap" in cli.stderr)


def test_spawned_threads_call_the_python_natives_too(backend):
    machine = voxvm.Machine(voxasm.assemble(SPAWNED_NATIVE), backend=backend)
    machine.native(0x300)(lambda call: 42)
    result = machine.run()
    assert (result.exit_status, result.stdout, result.stderr) == (0, b"42\n", b"")


def test_a_python_natives_own_error_on_a_spawned_thread_propagates(backend):
    machine = voxvm.Machine(voxasm.assemble(SPAWNED_NATIVE), backend=backend)

    @machine.native(0x300)
    def broken(call):
        raise LookupError("a bug in the native")

    before = threading.active_count()
    with pytest.raises(LookupError, match="a bug in the native"):
        machine.run()
    assert threading.active_count() == before


@pytest.mark.parametrize("limit, message", [
    (dict(max_steps=1000), "thread 1, which the program started, did not halt within 1000 branch events"),
    (dict(timeout=0.3), "the program did not halt within 0.3 s (a thread it started was still running)"),
])
def test_run_limits_stop_spawned_threads_and_leave_none_behind(backend, limit, message):
    before = threading.active_count()
    with pytest.raises(voxvm.RunLimitExceeded) as caught:
        voxvm.Machine(voxasm.assemble(SPAWNED_LOOP), backend=backend).run(**limit)
    assert message in str(caught.value) and caught.value.result.exit_status == 124
    assert threading.active_count() == before


def test_a_timeout_wakes_a_sleeping_native(backend):
    machine = voxvm.Machine(voxasm.assemble("section text\n.start\n    uload r1 60000\n    ncall 0x06 r0\n"
                                            "    halt\n"), backend=backend)
    started = time.monotonic()
    with pytest.raises(voxvm.RunLimitExceeded):
        machine.run(timeout=0.2)
    assert time.monotonic() - started < 30        # not the 60 s sleep: the stop woke it


class _OnlyRead:
    """A stdin with read() and nothing else."""

    def read(self, size: int = -1) -> bytes:
        return b"only read\n"


ECHO_LINE = ("section text\n.start\n    alloc r10 64\n    movr r1 r10\n    uload r2 64\n    ncall 0x02 r0\n"
             "    movr r1 r10\n    movr r3 r0\n    uload r2 1\n    ncall 0x08 r0\n    halt\n")


@pytest.mark.parametrize("make_stdin, line", [
    (lambda: io.StringIO("text io\n"), b"text io\n"),
    (_OnlyRead, b"only read\n"),
    (lambda: io.BytesIO(b"bytes io\n"), b"bytes io\n"),
])
def test_stdin_may_be_any_object_with_read(backend, make_stdin, line):
    result = voxvm.Machine(voxasm.assemble(ECHO_LINE), backend=backend).run(make_stdin())
    assert (result.exit_status, result.stdout, result.stderr) == (0, line, b"")


@pytest.mark.parametrize("use, message", [
    ("call.read_memory(-1, 4)", "read_memory: the address must be an int of at least 0, not -1"),
    ("call.read_heap(16, -1)", "read_heap: the count must be an int of at least 0, not -1"),
    ("call.reg(1.5)", "a register number is an int, not float"),
    ("call.set_reg(0, 'x')", "set_reg(r0): expected an int, a float, a bool or a voxvm.Value, not str"),
    ("call.write(123)", "write: expected bytes, not int"),
    ("call.write('x', stream=3)", "write: stream 3 is neither 1 (stdout) nor 2 (stderr)"),
])
def test_a_native_misusing_native_call_gets_the_same_usage_error_on_both_backends(backend, use, message):
    machine = voxvm.Machine(voxasm.assemble(CALLS_NATIVE), backend=backend)
    machine.native(0x300)(lambda call: eval(use, {"call": call}) and None)
    with pytest.raises(voxvm.UsageError) as caught:
        machine.run()
    assert str(caught.value) == message


def test_an_address_beyond_64_bits_is_a_fault_not_an_overflow(backend):
    machine = voxvm.Machine(voxasm.assemble("section text\n.start\n    ncall 0x300 r0\n    halt\n"), backend=backend)
    machine.native(0x300)(lambda call: call.read_memory(2**70, 1))
    result = machine.run()
    assert result.pending == {Exc.MainSegmFault: 1}


@pytest.mark.parametrize("call, message", [
    (lambda: voxasm.assemble(5), "assemble: the source is text or bytes, not int"),
    (lambda: voxasm.assemble(None), "assemble: the source is text or bytes, not NoneType"),
    (lambda: voxasm.assemble(HELLO, warnings=()), "assemble: warnings is a list to append to, not tuple"),
    (lambda: voxvm.load("a\0b.vvs"), "'a\\x00b.vvs': a file name cannot contain a NUL byte"),
])
def test_assemble_and_load_refuse_wrong_arguments_with_a_usage_error(call, message):
    with pytest.raises(voxvm.UsageError) as caught:
        call()
    assert str(caught.value) == message


@pytest.mark.parametrize("exception", [SystemExit(3), pytest.fail.Exception])
def test_a_base_exception_from_a_native_on_a_spawned_thread_propagates(backend, exception):
    # pytest.fail raises a BaseException: a failed check inside a native must fail the test
    # from any thread, not end as a 'join ... did not halt' line
    machine = voxvm.Machine(voxasm.assemble(SPAWNED_NATIVE), backend=backend)
    error = exception if isinstance(exception, BaseException) else exception("check failed")

    @machine.native(0x300)
    def failing(call):
        raise error

    with pytest.raises(type(error)):
        machine.run()


def test_a_timeout_stops_threads_spawned_while_the_run_stops(tmp_path):
    # A thread built while the timeout stopped the others was not stopped: run() then
    # waited for it forever. In a subprocess, so that a regression fails instead of hanging.
    (tmp_path / "spawner.vvs").write_text(
        "section text\n.start\n    uload r10 0\n    uload r11 200\nlabel loop\n    fnstind r1 @spin\n"
        "    uload r2 0\n    ncall 0x30 r0\n    uinc r10\n    ucmp r10 r11\n    jl @loop\n    halt\n"
        "func spin\nlabel again\n    jmp @again\n")
    script = ("import sys, threading, voxvm\n"
              "m = voxvm.Machine(sys.argv[1], backend='python')\n"
              "for _ in range(30):\n"
              "    try:\n        m.run(timeout=0.02)\n    except voxvm.RunLimitExceeded:\n        pass\n"
              "print(threading.active_count())\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "spawner.vvs")],
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, "1\n"), done.stderr


def test_max_output_stops_a_runaway_print_loop(backend):
    import voxasm

    source = "section text\n.start\n    uload r2 1\n    uload r1 7\nlabel again\n    ncall 0x01 r0\n    jmp @again\n"
    machine = voxvm.Machine(voxasm.assemble_program(source, "p.vvs"), backend=backend)
    with pytest.raises(voxvm.RunLimitExceeded) as stopped:
        machine.run(timeout=60, max_output=1000)
    assert stopped.value.reason == "max_output" and len(stopped.value.result.stdout) == 1000
    assert str(stopped.value) == "p.vvs: the program wrote more than 1000 bytes (max_output)"
    for bad in (0, -1, 1.5, True, "10"):
        with pytest.raises(voxvm.UsageError, match="max_output"):
            machine.run(max_output=bad)


def test_a_timeout_stops_a_running_shell_command_and_what_it_started(backend):
    import time

    import voxasm

    # "sleep 30; echo a b c": 20 UTF-16 units, 40 bytes
    source = ('section text\n.start\n    alloc r10 40\n    dsload r29 cmd 0\n    uload r28 40\n'
              '    storedat r10 r29 r28\n    alloc r11 64\n    movr r1 r10\n    uload r2 40\n    movr r3 r11\n'
              '    uload r4 64\n    ncall 0x07 r0\n    halt\nsection data\n    cmd str "sleep 30; echo a b c"\n')
    machine = voxvm.Machine(voxasm.assemble_program(source, "p.vvs"), backend=backend, allow_run=True)
    started = time.monotonic()
    with pytest.raises(voxvm.RunLimitExceeded):
        machine.run(timeout=0.5)
    assert time.monotonic() - started < 10
