"""The programs the debugging tests (tests/debugging/) share, as .vvs source."""

# main calls average, which calls total; the fdiv at line 14 traps (r1 is a uint64).
AVERAGE = """\
section data
    nums uint[] [3, 5, 7, 9]
    count uint 4
section text
func main
.start
    call @average
    halt
func average
    dsload r10 count 0
    call @total
    movr r1 r0
    fload r2 4.0
    fdiv r3 r1 r2
    ret
func total
    uload r0 0
    uload r11 0
    uload r12 0
label loop
    dsrload r13 r12 nums
    uadd r0 r13
    uload r14 8
    uadd r12 r14
    uinc r11
    ucmp r11 r10
    jl @loop
    ret
"""

# The fixed program: prints 6 (the average as a float) and halts.
FIXED = AVERAGE.replace("    movr r1 r0\n", "    movr r1 r0\n    utof r1 r1\n").replace(
    "    fdiv r3 r1 r2\n", "    fdiv r3 r1 r2\n    movr r1 r3\n    uload r2 1\n    ncall 0x01 r0\n")

# Recursion without a base case: the recursion limit.
RECURSE = """\
section text
func main
.start
    call @down
    halt
func down
    call @down
    ret
"""


def run_source(source: str, path: str = "avg.vvs", **options) -> tuple[int, str, str]:
    """Assemble ``source`` and run it in this process with VMConfig ``options``:
    ``(exit status, stdout, stderr)``."""
    import io

    from voxasm import assemble_program as assemble
    from voxvm.config import VMConfig
    from voxvm.machine import run_program

    out, err = io.BytesIO(), io.BytesIO()
    status = run_program(assemble(source, path), VMConfig(**options), stdin=io.BytesIO(),
                         stdout=out, stderr=err)
    return status, out.getvalue().decode(), err.getvalue().decode()
