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
    # addresses: never a traceback, never a breakpoint that cannot be reached
    ("x/16 -1", "Cannot access memory at address -1: an address is 0 to 2^64-1."),
    ("x/1 99999999999999999999999", "Cannot access memory at address 99999999999999999999999: "
                                    "an address is 0 to 2^64-1."),
    ("watch *-1", "Cannot access memory at address -1: an address is 0 to 2^64-1."),
    ("break *-1", "Cannot access memory at address -1."),
    ("break *1", "0x1 is inside the instruction at 0x0: a breakpoint there is never reached (break *0x0)."),
    ("break avg.vvs:0", 'Line 0 is out of range for "avg.vvs" (lines count from 1).'),
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


FIB = """\
section text
func main
.start
    uload r1 6
    call @fib
    halt
func fib
    uload r3 2
    ucmp r1 r3
    jl @base
    push r1
    udec r1
    call @fib
    pop r1
    push r0
    uload r3 2
    usub r1 r3
    call @fib
    pop r4
    uadd r0 r4
    ret
label base
    movr r0 r1
    ret
"""


def test_next_and_finish_in_recursion_stop_at_the_callers_depth(backend, tmp_path):
    # the call at line 13 returns to 0x..: a deeper call reaches that address first
    lines = debug(tmp_path, backend, FIB, "break avg.vvs:13\nrun\ndelete\nnext\nprint r0\n").stdout.splitlines()
    assert lines[2:] == ["0x0037 in fib, avg.vvs:14: pop r1", "r0 = uint64 5"]         # fib(5)
    lines = debug(tmp_path, backend, FIB, "break avg.vvs:13\nrun\nstep\ndelete\nfinish\n").stdout.splitlines()
    assert lines[-2:] == ["0x0037 in fib, avg.vvs:14: pop r1", "Value returned: r0 = uint64 5"]


LOOP_AT_ENTRY = """\
section text
.start
label top
    uinc r1
    uload r2 3
    ucmp r1 r2
    jl @top
    halt
"""


def test_a_breakpoint_on_the_first_instruction_stops_run_before_it(backend, tmp_path):
    script = "break top\nrun\np r1\ncontinue\np r1\ncontinue\np r1\ncontinue\n"
    lines = debug(tmp_path, backend, LOOP_AT_ENTRY, script).stdout.splitlines()
    stop = "Breakpoint 1, 0x0000 in (top level), avg.vvs:4: uinc r1"
    assert lines == ["Breakpoint 1 at 0x0: avg.vvs:4.", stop, "r1 = uint64 0", stop, "r1 = uint64 1",
                     stop, "r1 = uint64 2", "[program halted at 0x18, exit status 0]"]
    lines = debug(tmp_path, backend, LOOP_AT_ENTRY, "start\ntbreak top\ncontinue\ncontinue\ninfo b\n"
                  ).stdout.splitlines()
    assert lines == ["0x0000 in (top level), avg.vvs:4: uinc r1",
                     "Temporary breakpoint 1 at 0x0: avg.vvs:4.",
                     "Temporary breakpoint 1, 0x0000 in (top level), avg.vvs:4: uinc r1",
                     "[program halted at 0x18, exit status 0]", "No breakpoints or watchpoints."]


def test_a_stop_at_a_breakpoint_is_reported_once(backend, tmp_path):
    lines = debug(tmp_path, backend, FIB, "break avg.vvs:13\nrun\nnext\n").stdout.splitlines()
    stop = "Breakpoint 1, 0x002e in fib, avg.vvs:13: call @fib"
    assert lines == ["Breakpoint 1 at 0x2e: avg.vvs:13.", stop, stop]    # the deeper call's, once


def test_every_watchpoint_an_instruction_changes_is_reported_once(backend, tmp_path):
    lines = debug(tmp_path, backend, AVERAGE, "break total\nrun\nwatch r0\nwatch r0\ncontinue\ncontinue\n"
                  ).stdout.splitlines()
    assert lines[4:13] == ["", "Watchpoint 2: r0", "", "Old value = uint64 0", "New value = uint64 3",
                           "", "Watchpoint 3: r0", "", "Old value = uint64 0"]
    assert lines[13:15] == ["New value = uint64 3", "0x0063 in total, avg.vvs:23: uload r14 8"]
    assert lines[18:20] == ["Old value = uint64 3", "New value = uint64 8"]   # not 0 -> 3 again


HEAP = """\
section text
.start
    alloc r8 64
    uload r5 42
    uload r9 1
    store r8 r5 r9
    halt
"""


def test_heap_blocks_are_examined_and_watched_through_heap_or_a_register(backend, tmp_path):
    # heap block 0x10 is also a main-memory address: heap: and an address register say which
    script = "break avg.vvs:6\nrun\nwatch *heap:0x10\nwatch *r8\nnext\nx/4 heap:0x10\nx/4 r8\nx/4 0x10\n"
    lines = debug(tmp_path, backend, HEAP, script).stdout.splitlines()
    assert lines[2:4] == ["Watchpoint 2: *heap:0x10", "Watchpoint 3: *heap:0x10"]
    assert lines[7:9] == ["Old value = 00 00 00 00 00 00 00 00", "New value = 2a 00 00 00 00 00 00 00"]
    assert lines[12:14] == ["Old value = 00 00 00 00 00 00 00 00", "New value = 2a 00 00 00 00 00 00 00"]
    assert lines[15:17] == ["0x00000010 <heap>:  2a 00 00 00", "0x00000010 <heap>:  2a 00 00 00"]
    assert lines[17].startswith("0x00000010 <main memory>:")


def test_x_shows_main_memory_up_to_its_end(backend, tmp_path):
    lines = debug(tmp_path, backend, FIXED, "step\nx/4096 0x90\n").stdout.splitlines()
    assert lines[1].startswith("(main memory ends at 0x") and lines[2].startswith("0x00000090 <main memory>:")


def test_list_goes_on_without_repeating_and_shows_where_the_program_stopped(backend, tmp_path):
    lines = debug(tmp_path, backend, FIXED, "list\n" * 5).stdout.splitlines()
    numbers = [int(line.split()[0]) for line in lines if line[:1].isdigit()]
    assert numbers == list(range(1, len(FIXED.splitlines()) + 1))       # each line once, none past the end
    assert lines[-1].startswith("Line number ") and "out of range" in lines[-1]
    lines = debug(tmp_path, backend, FIXED, "run\nlist\n").stdout.splitlines()
    assert [line.split()[0] for line in lines[2:]] == [str(n) for n in range(3, 13)]    # around halt, line 8


def test_running_again_forgets_the_previous_runs_exit_status(backend, tmp_path):
    assert debug(tmp_path, backend, AVERAGE, "run\n").returncode == 70
    assert debug(tmp_path, backend, AVERAGE, "run\nbreak average\nrun\nquit\n").returncode == 0


def test_a_comment_does_not_change_what_an_empty_line_repeats(backend, tmp_path):
    lines = debug(tmp_path, backend, FIXED, "step\n# a note\n\n").stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["0x000a in average, avg.vvs", "0x001c in average, avg.vvs"]


def test_debug_offers_no_trace_or_profile_flags(tmp_path):
    shown = subprocess.run([sys.executable, "-m", "voxvm", "debug", "--help"], capture_output=True, text=True,
                           timeout=60, cwd=tmp_path)
    assert "--trace" not in shown.stdout and "--profile" not in shown.stdout and "--gc-log" in shown.stdout
    (tmp_path / "avg.vvs").write_text(FIXED)
    for args in (["debug", "--trace", "avg.vvs"], ["--trace", "debug", "avg.vvs"]):
        refused = subprocess.run([sys.executable, "-m", "voxvm", *args], capture_output=True, text=True,
                                 timeout=60, cwd=tmp_path, input="")
        assert refused.returncode == 2 and refused.stdout == "", args
