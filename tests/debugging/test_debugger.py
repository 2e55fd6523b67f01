"""``voxvm debug`` (voxvm/debugger.py) driven by scripts on stdin, on both backends."""

from __future__ import annotations

import subprocess
import sys

import pytest

from support.debug_programs import AVERAGE, FIXED

COUNTER = """\
section data
    counter uint 0
section text
.start
    uload r1 5
label again
    dsload r2 counter 0
    uinc r2
    dssave r2 counter 0
    udec r1
    jnz @again
    halt
"""


def debug(tmp_path, backend: str, source: str, script: str, *options: str) -> subprocess.CompletedProcess:
    (tmp_path / "avg.vvs").write_text(source)
    return subprocess.run([sys.executable, "-m", "voxvm", "debug", f"--backend={backend}", *options, "avg.vvs"],
                          input=script, capture_output=True, text=True, timeout=60, cwd=tmp_path)


def test_break_run_backtrace_and_registers(backend, tmp_path):
    result = debug(tmp_path, backend, AVERAGE, "break total\nrun\nbacktrace\ninfo registers r10\nprint nums\n")
    assert result.stdout.splitlines() == [
        "Breakpoint 1 at 0x37: avg.vvs:17.",
        "Breakpoint 1, 0x0037 in total, avg.vvs:17: uload r0 0",
        "#0   0x0037 in total, avg.vvs:17",
        "#1   0x001c in average, avg.vvs:11",
        "#2   0x0000 in main, avg.vvs:7",
        "r10  0x0000000000000004  uint64 4",
        "nums = uint[4] [3, 5, 7, 9]",
    ]
    assert result.returncode == 0 and result.stderr == ""      # end of input ends the session


def test_step_next_over_a_call_and_finish(backend, tmp_path):
    script = "break *0x1c\nrun\nnext\nprint r0\nbreak avg.vvs:21\nrun\nfinish\nstep 2\n"
    lines = debug(tmp_path, backend, AVERAGE, script).stdout.splitlines()
    assert lines[:4] == ["Breakpoint 1 at 0x1c: avg.vvs:11.",
                         "Breakpoint 1, 0x001c in average, avg.vvs:11: call @total",
                         "0x0025 in average, avg.vvs:12: movr r1 r0",
                         "r0 = uint64 24"]
    assert lines[4:8] == ["Breakpoint 2 at 0x55: avg.vvs:21.",
                          "Starting the program again from the beginning.",
                          "Breakpoint 1, 0x001c in average, avg.vvs:11: call @total",
                          "Run till exit from 0x001c in average, avg.vvs:11: call @total"]
    # finish from average's frame runs to main: average traps on the way
    assert lines[8] == "Breakpoint 2, 0x0055 in total, avg.vvs:21: dsrload r13 r12 nums"


def test_watch_a_register_and_main_memory(backend, tmp_path):
    lines = debug(tmp_path, backend, AVERAGE, "watch r0\nrun\ncontinue\n").stdout.splitlines()
    assert lines[:7] == ["Watchpoint 1: r0", "", "Watchpoint 1: r0", "", "Old value = uint64 0",
                         "New value = uint64 3", "0x0063 in total, avg.vvs:23: uload r14 8"]
    assert lines[10:12] == ["Old value = uint64 3", "New value = uint64 8"]
    # counter's payload is at 0x45 (the item at the data base 0x3c, after its 9-byte header)
    script = "break again\nrun\ndelete\nwatch *0x45\ncontinue\ncontinue\nprint counter\nquit\n"
    lines = debug(tmp_path, backend, COUNTER, script).stdout.splitlines()
    assert lines[2:9] == ["Watchpoint 2: *0x45", "", "Watchpoint 2: *0x45", "",
                          "Old value = 00 00 00 00 00 00 00 00", "New value = 00 00 00 00 00 00 00 01",
                          "0x0030 in (top level), avg.vvs:10: udec r1"]
    assert lines[-1] == "counter = uint 2"


def test_the_program_output_and_exit_status(backend, tmp_path):
    result = debug(tmp_path, backend, FIXED, "run\ninfo registers r3\n")
    assert result.stdout.splitlines() == ["6", "[program halted at 0x9, exit status 0]",
                                          "r3   0x4018000000000000  float64 6"]
    assert result.returncode == 0
    result = debug(tmp_path, backend, AVERAGE, "run\nbt\n")
    assert result.returncode == 70
    assert result.stderr.splitlines()[0].startswith("voxvm: trap: type mismatch")
    assert result.stdout.splitlines()[1:] == ["#0   0x0032 in average, avg.vvs:14", "#1   0x0000 in main, avg.vvs:7"]


@pytest.mark.parametrize("command, message", [
    ("break nowhere", 'Function or label "nowhere" not defined.'),
    ("break 0x14", 'Function or label "0x14" not defined (an address is written *0x14).'),
    ("break avg.vvs:999", 'Line 999 is out of range for "avg.vvs".'),
    ("break other.vvs:3", "No source file named other.vvs."),
    ("break nums", '"nums" is a data item, not code.'),
    ("break *0x7fffffffff", "Cannot access memory at address 0x7fffffffff."),
    ("watch *0xfffffff", "Cannot watch *0xfffffff: it is not inside main memory or a live heap block."),
    ("x/8 0xfffffff", "Cannot access memory at address 0xfffffff (8 bytes: not inside main memory or one "
                      "live heap block)."),
    ("print nothing", 'No symbol "nothing" in current program.'),
    ("frobnicate", 'Undefined command: "frobnicate".  Try "help".'),
    ("continue", "The program is not being run."),
    # numbers: ASCII digits only ('²'.isdigit() is true, and int() refuses it), counts >= 1
    ("step abc", 'step: "abc" is not a count (a whole number of at least 1).'),
    ("step 0", 'step: "0" is not a count (a whole number of at least 1).'),
    ("next ²", 'next: "²" is not a count (a whole number of at least 1).'),
    ("x/² 0", "x/²: the count is a whole number from 1 to 4096."),
    ("x/99999999999 0", "x/99999999999: the count is a whole number from 1 to 4096."),
    ("break avg.vvs:²", 'Function or label "avg.vvs:²" not defined.'),
    ("delete ²", "No breakpoint number ²."),
    ("print r²", 'No symbol "r²" in current program.'),
])
def test_bad_input_is_a_message_and_the_session_goes_on(backend, tmp_path, command, message):
    result = debug(tmp_path, backend, FIXED, f"step\n{command}\ncontinue\n")
    lines = result.stdout.splitlines()
    if command == "continue":
        result = debug(tmp_path, backend, FIXED, "continue\nrun\n")
        lines = ["", *result.stdout.splitlines()]
    assert lines[1] == message
    assert lines[-1] == "[program halted at 0x9, exit status 0]" and result.returncode == 0


class _Terminal:
    """A text stream that says it is a terminal."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


def test_instructions_and_source_are_coloured_on_a_terminal_only(monkeypatch):
    import io
    import re

    from voxasm import assemble_program
    from voxvm.config import VMConfig
    from voxvm.debugger import Session

    monkeypatch.delenv("NO_COLOR", raising=False)
    program = assemble_program(COUNTER, "c.vvs")
    shown = {}
    for name, out in (("terminal", _Terminal()), ("pipe", io.StringIO())):
        session = Session(program, VMConfig(), out, make_machine=None, source_text=COUNTER)
        session.say(session.location(program.entry))
        session.cmd_list("5")
        shown[name] = out.text if name == "terminal" else out.getvalue()
    assert "\x1b[" in shown["terminal"] and "\x1b[" not in shown["pipe"]
    assert re.sub(r"\x1b\[[0-9;]*m", "", shown["terminal"]) == shown["pipe"]
    assert "uload r1 5" in shown["pipe"]


def test_coredump_exit_writes_the_dump_as_a_run_does(backend, tmp_path):
    # (the flag was accepted and ignored: the session ended runs its own way, not Machine.conclude)
    result = debug(tmp_path, backend, FIXED, "run\n", "--coredump_exit")
    assert result.returncode == 0 and (tmp_path / "voxvm.dump").exists()


def test_a_closed_stdout_ends_the_session_with_74(backend, tmp_path):
    (tmp_path / "avg.vvs").write_text("section text\n.start\n    uload r2 1\nlabel l\n    ncall 0x01 r0\n"
                                      "    jmp @l\n")
    session = subprocess.Popen([sys.executable, "-m", "voxvm", "debug", f"--backend={backend}", "avg.vvs"],
                               cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    session.stdin.write(b"run\n")
    session.stdin.close()
    session.stdout.read(10)
    session.stdout.close()                       # as `| head -c 10` does
    try:
        assert session.wait(timeout=60) == 74
    finally:
        session.kill()
    assert b"voxvm: error: cannot write to stdout" in session.stderr.read()
