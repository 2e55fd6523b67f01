"""--trace and its options (voxvm/tracing.py): every expectation runs on both backends."""

from __future__ import annotations

from support.debug_programs import AVERAGE, FIXED, run_source

PREFIX = "voxvm: trace: "
HEAD = [
    "0x0000  main         avg.vvs:7        call @average                    ----",
    "0x000a  average      avg.vvs:10       dsload r10 count 0               ----  r10=uint64 4",
    "0x001c  average      avg.vvs:11       call @total                      ----",
    "0x0037  total        avg.vvs:17       uload r0 0                       ----",
    "0x0041  total        avg.vvs:18       uload r11 0                      ----",
    "0x004b  total        avg.vvs:19       uload r12 0                      ----",
    "0x0055  total        avg.vvs:21       dsrload r13 r12 nums             ----  r13=uint64 3",
    "0x0060  total        avg.vvs:22       uadd r0 r13                      ----  r0=uint64 3",
    "0x0063  total        avg.vvs:23       uload r14 8                      ----  r14=uint64 8",
    "0x006d  total        avg.vvs:24       uadd r12 r14                     ----  r12=uint64 8",
    "0x0070  total        avg.vvs:25       uinc r11                         ----  r11=uint64 1",
    "0x0072  total        avg.vvs:26       ucmp r11 r10                     --N-",
    "0x0075  total        avg.vvs:27       jl @loop                         --N-",
    "0x0055  total        avg.vvs:21       dsrload r13 r12 nums             --N-  r13=uint64 5",
]
TAIL = [
    "0x0072  total        avg.vvs:26       ucmp r11 r10                     -Z--",
    "0x0075  total        avg.vvs:27       jl @loop                         -Z--",
    "0x007e  total        avg.vvs:28       ret                              -Z--",
    "0x0025  average      avg.vvs:12       movr r1 r0                       -Z--  r1=uint64 24",
    "0x0028  average      avg.vvs:13       fload r2 4.0                     -Z--  r2=float64 4",
    "0x0032  average      avg.vvs:14       fdiv r3 r1 r2                    -Z--  [trap]",
]
TRAP = [
    "voxvm: trap: type mismatch: uint64 / float64 at 0x32 (fdiv) in average, avg.vvs:14",
    "voxvm: backtrace (innermost first):",
    "voxvm:   #0   0x0032 in average, avg.vvs:14",
    "voxvm:   #1   0x0000 in main, avg.vvs:7",
]


def test_one_line_per_instruction_with_location_changes_and_flags(backend):
    status, out, err = run_source(AVERAGE, backend=backend, trace=True)
    lines = err.splitlines()
    assert status == 70 and out == ""
    traced = [line[len(PREFIX):] for line in lines if line.startswith(PREFIX)]
    assert len(traced) == 3 + 3 + 4 * 7 + 1 + 3
    assert traced[:len(HEAD)] == HEAD
    assert traced[-len(TAIL):] == TAIL
    assert lines[len(traced):] == TRAP           # the trace, then the trap report


def test_limit_and_start_then_the_run_goes_on_untraced(backend):
    status, out, err = run_source(FIXED, backend=backend, trace_from="average", trace_limit=3)
    assert (status, out) == (0, "6\n")
    assert [line[len(PREFIX):] for line in err.splitlines()] == [
        "0x000a  average      avg.vvs:10       dsload r10 count 0               ----  r10=uint64 4",
        "0x001c  average      avg.vvs:11       call @total                      ----",
        "0x004b  total        avg.vvs:21       uload r0 0                       ----",
    ]


def test_start_at_a_label_an_address_or_func_number(backend):
    by_label = run_source(AVERAGE, backend=backend, trace_from="loop", trace_limit=1)[2]
    by_address = run_source(AVERAGE, backend=backend, trace_from="0x55", trace_limit=1)[2]
    assert by_label.splitlines()[0] == by_address.splitlines()[0] == PREFIX + HEAD[6]
    by_number = run_source(AVERAGE, backend=backend, trace_from="func#2", trace_limit=1)[2]
    assert by_number.splitlines()[0] == PREFIX + HEAD[3]


def test_native_calls_and_halt_are_traced_after_they_ran(backend):
    status, out, err = run_source(FIXED, backend=backend, trace_from="average")
    assert (status, out) == (0, "6\n")
    lines = [line[len(PREFIX):] for line in err.splitlines()]
    assert lines[-4:] == [
        "0x003c  average      avg.vvs:17       uload r2 1                       -Z--  r2=uint64 1",
        "0x0046  average      avg.vvs:18       ncall 0x01 r0                    -Z--",
        "0x004a  average      avg.vvs:19       ret                              -Z--",
        "0x0009  main         avg.vvs:8        halt                             -Z--  [halt]",
    ]


def test_trace_file_gets_the_lines_without_the_prefix(backend, tmp_path):
    path = tmp_path / "t.txt"
    status, _, err = run_source(AVERAGE, backend=backend, trace_file=str(path))
    assert status == 70
    assert err.splitlines() == TRAP
    assert path.read_text().splitlines()[:len(HEAD)] == HEAD


def test_a_trace_file_that_cannot_be_written_is_a_warning(backend, tmp_path):
    status, out, err = run_source(FIXED, backend=backend, trace_file=str(tmp_path / "no" / "t.txt"))
    assert (status, out) == (0, "6\n")
    assert err.splitlines() == [f"voxvm: warning: cannot write the trace to {tmp_path / 'no' / 't.txt'}: "
                                "No such file or directory; the run goes on untraced"]


def test_an_unknown_start_is_a_warning(backend):
    status, out, err = run_source(FIXED, backend=backend, trace_from="nowhere")
    assert (status, out) == (0, "6\n")
    assert err.splitlines() == ["voxvm: warning: --trace-from: 'nowhere' is no label, function or address "
                                "of avg.vvs (it knows labels and functions); the run goes on untraced"]


def test_a_start_inside_an_instruction_is_a_warning(backend):
    status, out, err = run_source(FIXED, backend=backend, trace_from="0x1")
    assert (status, out) == (0, "6\n")
    assert err.splitlines() == ["voxvm: warning: --trace-from: 0x1 is inside the instruction at 0x0, so the "
                                "run never reaches it; the run goes on untraced"]


def test_a_start_never_reached_traces_nothing(backend):
    source = FIXED.replace("    ret\nfunc total", "    ret\nlabel never\n    halt\nfunc total")
    status, out, err = run_source(source, backend=backend, trace_from="never")
    assert (status, out, err) == (0, "6\n", "")
