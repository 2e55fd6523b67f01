"""FFI through --native-configs: the example configs on both backends, and every load error.

Covers voxvm/host/ffi.py (configs, signatures, binding, the ctypes calls of
the reference backend) and csrc/vv_ffi.h (the calls inside the compiled
loop). The example libraries nconfigs/libs/*.c are compiled here with the
system C compiler into a temporary copy of nconfigs/ (nothing binary is
committed); every function of every example config is called on both
backends and the machine states must be identical. docs/ffi.md is the guide.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from support.machines import PUREPYTHON, UNDER_ASAN, backends
from voxasm import assemble_program as assemble
from voxvm.config import VMConfig
from voxvm.errors import UsageError
from voxvm.host.ffi import (ConfigError, FfiType, Signature, host_library_name, library_key,
                            load_native_configs, parse_config, parse_signature, read_configs)
from voxvm.isa import Exc, Tag
from voxvm.machine import Machine

NCONFIGS = REPO / "nconfigs"
MASK = (1 << 64) - 1
CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
pytestmark = pytest.mark.skipif(CC is None or not sys.platform.startswith("linux"),
                                reason="needs a C compiler and Linux (the example configs name .so files)")


def f_bits(x: float) -> int:
    return struct.unpack(">Q", struct.pack(">d", x))[0]


def build_library(source: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / host_library_name(source.stem)
    subprocess.run([CC, "-shared", "-fPIC", "-O2", "-o", str(target), str(source)], check=True)
    return target


@pytest.fixture(scope="module")
def nconfigs(tmp_path_factory) -> Path:
    """A copy of nconfigs/ with its libraries built into libs/."""
    folder = tmp_path_factory.mktemp("nconfigs")
    for config in NCONFIGS.glob("*.toml"):
        shutil.copy(config, folder / config.name)
    for source in (NCONFIGS / "libs").glob("*.c"):
        build_library(source, folder / "libs")
    return folder


def run(source: str, backend: str, configs, **config):
    """Run ``source`` with ``configs``; (machine, stdout, stderr)."""
    out, err = io.BytesIO(), io.BytesIO()
    machine = Machine(assemble(source, "t.vvs"),
                      VMConfig(backend=backend, native_configs=str(configs), **config),
                      stdin=io.BytesIO(), stdout=out, stderr=err)
    machine.run()
    machine.io.flush()
    return machine, out.getvalue(), err.getvalue().decode()


def observable(machine):
    snap = machine.core.snapshot()
    return snap.registers, snap.pending, snap.heap, snap.flags


def run_both(source: str, configs, **config):
    """Run on every backend; the states and outputs must be identical. Returns the last run."""
    results = [run(source, backend, configs, **config) for backend in backends()]
    first = results[0]
    for other in results[1:]:
        assert observable(other[0]) == observable(first[0])
        assert other[1:] == first[1:]
    return first


# ---------------------------------------------------------------------- the example configs

EVERY_FUNCTION = """
section data
    msg str "voxvm"
section text
.start
    ; test.toml: upstream's example
    uload r1 5
    uload r2 7
    ncall 0x100 r0
    movr r20 r0
    ; strings.toml, upstream ABI: floats arrive as IEEE bits, tags are visible
    fload r1 2.5
    iload r2 -4
    ncall 0x110 r0
    movr r21 r0
    uload r1 1
    fload r2 1.0
    dslea r3 msg 0
    ncall 0x111 r0
    movr r22 r0
    ; strings.toml, typed
    fload r1 10.0
    fload r2 20.0
    fload r3 0.25
    ncall 0x118 r0
    movr r23 r0
    uload r1 3
    fload r2 1.5
    iload r3 -10
    ncall 0x119 r0
    movr r24 r0
    iload r1 7
    ncall 0x11a r0
    movr r25 r0
    ; heap strings: "ab!" in UTF-16BE, upper-cased into a second block
    alloc r10 6
    alloc r11 6
    uload r5 0x0061
    uload r6 2
    store r10 r5 r6
    uload r7 2
    movr r12 r10
    uadd r12 r7
    uload r5 0x0062
    store r12 r5 r6
    uadd r12 r7
    uload r5 0x0021
    store r12 r5 r6
    movr r1 r11
    movr r2 r10
    uload r3 6
    ncall 0x11b r0
    movr r26 r0
    movr r1 r11
    uload r2 6
    ncall 0x11c r0
    movr r27 r0
    movr r1 r10
    uload r2 6
    uload r3 0x7a
    iload r0 -1
    ncall 0x11d r0
    movr r28 r0
    uload r1 40
    uload r2 2
    ncall 0x11e r0
    movr r29 r0
    ; main memory: the payload of the str item (after its 9-byte header)
    dslea r1 msg 9
    uload r2 10
    ncall 0x11c r0
    movr r30 r0
    halt
"""


def test_every_function_of_the_string_and_upstream_examples(nconfigs):
    machine, out, err = run_both(EVERY_FUNCTION, nconfigs)
    assert err == "" and out == b""
    reg = machine.core.get_reg
    assert reg(20) == (12, Tag.U64)
    assert reg(21) == (f_bits(-10.0), Tag.F64)                 # 2.5 * -4: the float was not truncated
    assert reg(22) == (0x9 << 8 | 0x3 << 4 | 0x1, Tag.U64)     # tags of r1..r3: uint64, float64, ds_addr
    assert reg(23) == (f_bits(12.5), Tag.F64)
    assert reg(24) == (f_bits(-5.5), Tag.F64)                  # 3 * 1.5 - 10: i64, f64, i64 interleaved
    assert reg(25) == ((-7) & MASK, Tag.I64)
    assert reg(26) == (2, Tag.U64)                             # two letters changed
    assert machine.core.heap_read(reg(11)[0], 6) == "AB!".encode("utf-16-be")
    assert reg(27) == (sum("AB!".encode("utf-16-be")), Tag.U64)
    assert reg(28) == ((-1) & MASK, Tag.I64)                   # void: r0 unchanged
    assert machine.core.heap_read(reg(10)[0], 6) == b"z" * 6
    assert reg(29) == (42, Tag.U64)
    assert reg(30) == (sum("voxvm".encode("utf-16-be")), Tag.U64)
    assert machine.core.pending() == {}


LIBM_LIBC = """
.start
    fload r1 0.0
    ncall 0x200 r0
    movr r20 r0
    fload r1 2.0
    fload r2 10.0
    ncall 0x201 r0
    movr r21 r0
    fload r1 1.5
    iload r2 -3
    ncall 0x202 r0
    movr r22 r0
    fload r1 0.001
    ncall 0x203 r0
    movr r23 r0
    fload r1 -2.5
    ncall 0x204 r0
    movr r24 r0
    alloc r10 8
    uload r5 0x68692100
    uload r6 4
    store r10 r5 r6
    movr r1 r10
    ncall 0x210 r0
    movr r25 r0
    iload r1 -9
    ncall 0x211 r0
    movr r26 r0
    uload r1 0xfffffffb
    ncall 0x212 r0
    movr r27 r0
    uload r1 3
    ncall 0x200 r0
    movr r28 r0
    halt
"""


def test_libm_and_libc_through_typed_signatures(nconfigs):
    import math

    machine, out, err = run_both(LIBM_LIBC, nconfigs)
    assert err == ""
    reg = machine.core.get_reg
    assert reg(20) == (f_bits(1.0), Tag.F64)
    assert reg(21) == (f_bits(1024.0), Tag.F64)
    assert reg(22) == (f_bits(0.1875), Tag.F64)
    assert reg(23) == ((-10) & MASK, Tag.I64)                  # i32 result, sign-extended
    assert reg(24) == ((-3) & MASK, Tag.I64)
    assert reg(25) == (3, Tag.U64)                             # strlen of "hi!" in a heap block
    assert reg(26) == (9, Tag.I64)
    assert reg(27) == (5, Tag.I64)                             # i32(-5) from the low 32 bits of a uint64
    assert reg(28) == (f_bits(math.cos(3.0)), Tag.F64)         # a uint64 argument converted to f64


def test_the_compiled_core_runs_every_ffi_code_in_its_c_table(nconfigs):
    if "cython" not in backends():
        pytest.skip("no compiled core")
    machine, _, _ = run("    halt", "cython", nconfigs)
    codes = set(machine.core.c_natives())
    assert {0x100, 0x110, 0x111, 0x112, 0x118, 0x11b, 0x11e, 0x200, 0x210} <= codes


@pytest.mark.parametrize("setup, exc, message", [
    ("uload r1 4096", Exc.IncorrectRegType, "ptr argument r1 holds a uint64"),
    ("alloc r1 4\n    uload r2 4\n    uadd r1 r2", Exc.HeapSegmFault, "is not inside a live block"),
    ("alloc r1 4\n    free r1", Exc.HeapSegmFault, "is not inside a live block"),
])
def test_a_ptr_argument_must_be_a_live_vm_address(nconfigs, setup, exc, message):
    machine, _, err = run_both(f".start\n    {setup}\n    iload r0 -2\n    ncall 0x210 r0\n    halt", nconfigs)
    assert machine.core.pending() == {exc: 1}
    assert machine.core.get_reg(0) == ((-2) & MASK, Tag.I64)
    reason, raised = err.splitlines()
    assert "ncall 0x210 (strlen)" in reason and message in reason
    assert raised.startswith(f"voxvm: exception: {exc.name} at 0x") and raised.endswith(f"(ncall), t.vvs:{setup.count(chr(10)) + 4}")


def test_a_result_type_that_is_no_tag_raises_invaliddatatype(nconfigs):
    machine, _, _ = run_both(".start\n    iload r0 -3\n    ncall 0x112 r0\n    halt", nconfigs)
    assert machine.core.pending() == {Exc.InvalidDataType: 1}
    assert machine.core.get_reg(0) == ((-3) & MASK, Tag.I64)


def test_one_config_file_instead_of_a_folder(nconfigs):
    machine, _, err = run_both(".start\n    uload r1 1\n    uload r2 2\n    ncall 0x100 r0\n    halt",
                               nconfigs / "test.toml")
    assert machine.core.get_reg(0) == (3, Tag.U64) and err == ""


def test_an_unconfigured_code_is_still_no_such_callcode(nconfigs):
    machine, _, err = run_both(".start\n    ncall 0x4321 r0\n    halt", nconfigs)
    assert machine.core.pending() == {Exc.NativeFault: 1} and "No such callcode" in err


# ---------------------------------------------------------------------- libraries that fail


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_a_missing_library_warns_and_no_other_code_moves(nconfigs, tmp_path):
    folder = tmp_path / "c"
    shutil.copytree(nconfigs, folder)
    # Sorted before test.toml: upstream would shift test.toml's codes onto this library number.
    write(folder, "a_missing.toml", 'name = "gone"\nlib_filename_linux = "libs/libgone.so"\n'
                                    '[functions.f]\nname = "f"\nncall_code = 0x300\nargc = 1\n')
    source = (".start\n    uload r1 5\n    uload r2 7\n    ncall 0x100 r0\n    movr r20 r0\n"
              "    ncall 0x300 r0\n    halt")
    machine, _, err = run_both(source, folder)
    lines = err.splitlines()
    assert lines[0].startswith("voxvm: warning: library 'libs/libgone.so' of ") and "a_missing.toml" in lines[0]
    assert "not found next to the config" in lines[0] and "ncall 0x300 stays unmapped" in lines[0]
    assert machine.core.get_reg(20) == (12, Tag.U64)
    assert machine.core.pending() == {Exc.NativeFault: 1}
    assert "ncall 0x300 (f): unmapped: library" in lines[1]
    assert lines[2:] == ["voxvm: exception: NativeFault at 0x1b (ncall), t.vvs:6"]


def test_a_missing_symbol_and_a_data_symbol_warn_and_stay_unmapped(tmp_path):
    write(tmp_path, "libc.toml", 'name = "libc"\nlib_filename_linux = "libc.so.6"\n'
          '[functions.a]\nname = "no_such_function_here"\nncall_code = 0x300\nsignature = "void()"\n'
          '[functions.b]\nname = "environ"\nncall_code = 0x301\nsignature = "void()"\n'
          '[functions.c]\nname = "labs"\nncall_code = 0x302\nsignature = "i64(i64)"\n')
    source = ".start\n    iload r1 -4\n    ncall 0x302 r0\n    ncall 0x301 r0\n    halt"
    machine, _, err = run_both(source, tmp_path)
    lines = err.splitlines()
    assert "functions.a.name: symbol 'no_such_function_here' is not in libc.so.6" in lines[0]
    assert "ncall 0x300 stays unmapped" in lines[0]
    assert "functions.b.name: 'environ' in libc.so.6 is a data object, not a function" in lines[1]
    assert machine.core.get_reg(0) == (4, Tag.I64)
    assert machine.core.pending() == {Exc.NativeFault: 1}


def test_a_library_that_is_not_a_library_warns(tmp_path):
    write(tmp_path / "libs", "libjunk.so", "not an ELF file")
    write(tmp_path, "junk.toml", 'name = "junk"\nlib_filename_linux = "libs/libjunk.so"\n'
          '[functions.f]\nname = "f"\nncall_code = 0x300\nargc = 0\n')
    warnings = []
    runtime = load_native_configs(str(tmp_path), warnings.append)
    assert len(warnings) == 1 and "cannot be loaded" in warnings[0] and runtime.bound == []


def test_a_relative_library_is_found_next_to_the_config_then_in_the_working_directory(
        nconfigs, tmp_path, monkeypatch):
    configs = tmp_path / "configs"
    write(configs, "t.toml", (nconfigs / "test.toml").read_text())
    warnings = []
    assert load_native_configs(str(configs), warnings.append).bound == []      # libs/ is nowhere yet
    shutil.copytree(nconfigs / "libs", tmp_path / "libs")
    monkeypatch.chdir(tmp_path)
    runtime = load_native_configs(str(configs), warnings.append)
    assert [b.function.symbol for b in runtime.bound] == ["unsigned_add"]
    assert len(warnings) == 1


# ---------------------------------------------------------------------- configs that are refused

GOOD = 'name = "x"\nlib_filename_linux = "libx.so"\n'
FUNC = '[functions.f]\nname = "f"\n'


@pytest.mark.parametrize("text, key, message", [
    (b"name = \"x\n", None, "malformed TOML"),
    (b"name = \"x\"\n\xff\xfe\x00", None, "not UTF-8 text (byte offset 11)"),
    (GOOD + FUNC + "ncall_code = 0x100\nargc = 2\n[functions.g]\nname = \"unsig", None, "malformed TOML"),
    (GOOD + '[functions.f]\nname = "f"\nncall_co', None, "malformed TOML"),
    (GOOD + FUNC, "functions.f.ncall_code", "missing"),
    ('lib_filename_linux = "libx.so"\n', "name", "missing"),
    ('name = 3\nlib_filename_linux = "libx.so"\n', "name", "must be a string, not the integer 3"),
    ('name = "x"\n', "lib_filename_linux", "missing"),
    ('name = "x"\nlib_filename_linux = ""\n', "lib_filename_linux", "must name a library file"),
    ('name = "x"\nlib_filename_linux = "a"\nversion = 1.0\n', "version", "must be a string"),
    (GOOD + "functions = 3\n", "functions", "must be a table"),
    (GOOD + "[functions]\nf = 1\n", "functions.f", "must be a table"),
    (GOOD + FUNC + 'ncall_code = "0x100"\nargc = 1\n', "functions.f.ncall_code", "must be an integer"),
    (GOOD + FUNC + "ncall_code = true\nargc = 1\n", "functions.f.ncall_code", "not a boolean"),
    (GOOD + FUNC + "ncall_code = 0x10000\nargc = 1\n", "functions.f.ncall_code", "outside 0..0xffff"),
    (GOOD + FUNC + "ncall_code = -1\nargc = 1\n", "functions.f.ncall_code", "outside 0..0xffff"),
    (GOOD + FUNC + "ncall_code = 0x05\nargc = 1\n", "functions.f.ncall_code", "0x5 is a built-in"),
    (GOOD + FUNC + "ncall_code = 0x16\nargc = 1\n", "functions.f.ncall_code", "built-in"),
    (GOOD + FUNC + "ncall_code = 0x20\nargc = 1\n", "functions.f.ncall_code", "built-in"),
    (GOOD + FUNC + "ncall_code = 0x30\nargc = 1\n", "functions.f.ncall_code", "concurrency"),
    (GOOD + FUNC + "ncall_code = 0x39\nargc = 1\n", "functions.f.ncall_code", "concurrency"),
    (GOOD + FUNC + "ncall_code = 0x100\nargc = 32\n", "functions.f.argc", "32 is outside 0..31"),
    (GOOD + FUNC + "ncall_code = 0x100\nargc = -1\n", "functions.f.argc", "outside 0..31"),
    (GOOD + FUNC + "ncall_code = 0x100\nargc = 2.0\n", "functions.f.argc", "not the float 2.0"),
    (GOOD + FUNC + "ncall_code = 0x100\n", "functions.f", "exactly one of argc"),
    (GOOD + FUNC + 'ncall_code = 0x100\nargc = 1\nsignature = "void()"\n', "functions.f", "exactly one"),
    (GOOD + FUNC + 'ncall_code = 0x100\nsignature = "f64(f32)"\n', "functions.f.signature", "argument 1 'f32'"),
    (GOOD + FUNC + 'ncall_code = 0x100\nsignature = "ptr(u64)"\n', "functions.f.signature", "cannot be a ptr"),
    (GOOD + FUNC + 'ncall_code = 0x100\nsignature = "f64"\n', "functions.f.signature", "is not RET(ARG, ...)"),
    (GOOD + FUNC + 'ncall_code = 0x100\nsignature = "u64(u64,,u64)"\n', "functions.f.signature", "argument 2"),
    (GOOD + FUNC + 'ncall_code = 0x100\nsignature = 3\n', "functions.f.signature", "must be a string"),
    (GOOD + '[functions.f]\nname = ""\nncall_code = 0x100\nargc = 0\n', "functions.f.name", "exported C symbol"),
])
def test_malformed_configs_are_refused_naming_the_file_and_key(tmp_path, text, key, message):
    path = tmp_path / "bad.toml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(ConfigError) as info:
        read_configs(str(tmp_path))
    error = info.value
    assert error.path == str(path) and error.key == key
    assert message in error.message, error.message
    rendered = error.render()
    assert rendered.startswith("voxvm: error: --native-configs: ") and "\n" not in rendered
    assert int(error.exit_status) == 65


def test_a_code_given_twice_is_refused_even_across_files(tmp_path):
    write(tmp_path, "a.toml", GOOD + FUNC + "ncall_code = 0x100\nargc = 0\n")
    write(tmp_path, "b.toml", GOOD + '[functions.g]\nname = "g"\nncall_code = 0x100\nargc = 1\n')
    with pytest.raises(ConfigError, match=r"b\.toml: functions\.g\.ncall_code: 0x100 is already taken "
                                          r"by functions\.f \(f\) in .*a\.toml"):
        read_configs(str(tmp_path))


def test_only_toml_files_are_read_and_a_missing_target_is_an_error(tmp_path):
    write(tmp_path, "libfoo.so", "\x7fELF binary")
    (tmp_path / "sub.toml").mkdir()
    assert read_configs(str(tmp_path)) == []
    with pytest.raises(ConfigError, match="no such file or folder") as missing:
        read_configs(str(tmp_path / "nowhere"))
    assert missing.value.exit_status == 74                # an input that cannot be read (§5)
    with pytest.raises(ConfigError, match="not a regular file or a folder"):
        read_configs(os.devnull)
    with pytest.raises(UsageError, match="an empty path"):
        read_configs("")
    os.symlink(tmp_path / "gone.toml", tmp_path / "dangling.toml")
    with pytest.raises(ConfigError, match=r"dangling\.toml: no such file \(a dangling symbolic link\?\)"):
        read_configs(str(tmp_path))


def test_a_folder_without_configs_warns(tmp_path):
    warnings = []
    runtime = load_native_configs(str(tmp_path), warnings.append)
    assert runtime.bound == [] and warnings == [
        f"warning: --native-configs={tmp_path}: no *.toml config in the folder; no ncall is mapped"]


def test_signatures_allow_any_blanks_and_quote_what_they_reject():
    assert str(parse_signature("u64(u64,\n\tu64)")) == "u64(u64,u64)"
    with pytest.raises(ValueError, match=r"argument 1 'u\\x0064' is not one of"):
        parse_signature("u64(u\x0064)")
    with pytest.raises(ValueError) as f32:
        parse_signature("f32(f32)")
    assert "ptr" not in str(f32.value)


def test_the_library_field_of_the_running_os_is_used():
    text = ('name = "x"\nlib_filename_linux = "l.so"\nlib_filename_macos = "l.dylib"\n'
            'lib_filename_win = "l.dll"\n').encode()
    assert parse_config("c.toml", text, "linux").library == "l.so"
    assert parse_config("c.toml", text, "darwin").library == "l.dylib"
    assert parse_config("c.toml", text, "win32").library == "l.dll"
    assert library_key("sunos5") is None
    with pytest.raises(ConfigError, match="lib_filename_macos: missing"):
        parse_config("c.toml", b'name = "x"\nlib_filename_linux = "l.so"\n', "darwin")


def test_the_command_line_refuses_a_bad_config_before_running_anything(tmp_path):
    write(tmp_path / "cfg", "bad.toml", GOOD + FUNC + "ncall_code = 0x100\nargc = 40\n")
    program = write(tmp_path, "p.vvs", ".start\n    uload r1 1\n    uload r2 1\n    ncall 1 r0\n    halt\n")
    result = subprocess.run([sys.executable, "-m", "voxvm", "run", f"--native-configs={tmp_path / 'cfg'}",
                             str(program)], capture_output=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 65 and result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "bad.toml: functions.f.argc: 40 is outside 0..31" in lines[0]


def test_the_upstream_flag_spelling_runs_ffi_without_a_warning(nconfigs, tmp_path):
    program = write(tmp_path, "p.vvs", ".start\n    uload r1 40\n    uload r2 2\n    ncall 0x100 r0\n"
                                       "    movr r1 r0\n    uload r2 1\n    ncall 1 r0\n    halt\n")
    subprocess.run([sys.executable, "-m", "voxvm", "--vas=" + str(program)], check=True, cwd=tmp_path)
    result = subprocess.run([sys.executable, "-m", "voxvm", f"--vve={tmp_path / 'p.vve'}",
                             f"--native-configs={nconfigs}"], capture_output=True, timeout=60, cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"42\n", b"")


# ---------------------------------------------------------------------- signatures


def test_the_signature_grammar():
    assert parse_signature("f64(f64)") == Signature(FfiType.F64, (FfiType.F64,))
    assert parse_signature(" void ( ) ") == Signature(FfiType.VOID, ())
    assert parse_signature("u64( ptr , u64 )") == Signature(FfiType.U64, (FfiType.PTR, FfiType.U64))
    assert str(parse_signature("i32(i8,u16, f64)")) == "i32(i8,u16,f64)"
    parse_signature("u64(" + ",".join(["u64"] * 6 + ["f64"] * 8) + ")")
    for bad in ("u64(" + ",".join(["u64"] * 7) + ")", "f64(" + ",".join(["f64"] * 9) + ")",
                "void(void)", "F64(f64)", "f64(f64", "f64(f64))", ""):
        with pytest.raises(ValueError):
            parse_signature(bad)


def test_the_generated_call_shapes_are_fresh():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "gen_ffi_shapes.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# ---------------------------------------------------------------------- a crash inside foreign code

# The crash line is the compiled core's, and ASan's own SIGSEGV handler leaves it no room.
crash_handler_tests = pytest.mark.skipif(PUREPYTHON or UNDER_ASAN,
                                         reason="the compiled core's crash line, without ASan's handler")

CRASHING = r"""
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int64_t read_at(int64_t address) { return *(volatile int64_t *)(intptr_t)address; }
void give_up(void) { abort(); }
int64_t deeper(int64_t n) { volatile char frame[4096]; frame[0] = (char)n; return deeper(n + 1) + frame[0]; }
int64_t nap(int64_t ms) { usleep((useconds_t)ms * 1000); return ms; }
typedef struct { uint32_t typeind; uint64_t data; } VMValue;
VMValue upstream_read(const VMValue *args, uint32_t argc) {
    VMValue r = {1, (uint64_t)*(volatile int64_t *)(intptr_t)args[0].data}; (void)argc; return r;
}
/* A library that handles SIGSEGV itself (as a collector's write barrier does): a page
   that becomes writable the first time it is touched. */
static char *lazy_page;
static void make_writable(int sig, siginfo_t *info, void *context) {
    (void)sig; (void)context;
    char *at = (char *)info->si_addr;
    if (at >= lazy_page && at < lazy_page + 4096) mprotect(lazy_page, 4096, PROT_READ | PROT_WRITE);
    else abort();
}
__attribute__((constructor)) static void lazy_setup(void) {
    lazy_page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = make_writable;
    action.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &action, NULL);
}
int64_t touch_lazy(int64_t value) { lazy_page[8] = (char)value; return lazy_page[8]; }
"""
CRASH_FUNCTIONS = {0x300: ("read_at", "i64(i64)"), 0x301: ("give_up", "void()"), 0x302: ("deeper", "i64(i64)"),
                   0x304: ("nap", "i64(i64)")}


def crash_config(library: str, with_lazy: bool = False) -> str:
    text = f'name = "crash"\nlib_filename_linux = "{library}"\n'
    for code, (symbol, signature) in CRASH_FUNCTIONS.items():
        text += f'[functions.{symbol}]\nname = "{symbol}"\nncall_code = 0x{code:x}\nsignature = "{signature}"\n'
    text += '[functions.upstream]\nname = "upstream_read"\nncall_code = 0x303\nargc = 1\n'
    if with_lazy:
        text += '[functions.lazy]\nname = "touch_lazy"\nncall_code = 0x305\nsignature = "i64(i64)"\n'
    return text


@pytest.fixture(scope="module")
def crashing(tmp_path_factory) -> Path:
    """cfg/: the crashing functions; lazy/: the same library, whose constructor handles SIGSEGV."""
    folder = tmp_path_factory.mktemp("crashing")
    (folder / "crash.c").write_text(CRASHING)
    (folder / "plain.c").write_text(CRASHING.replace("__attribute__((constructor)) ", ""))
    build_library(folder / "plain.c", folder / "libs")
    build_library(folder / "crash.c", folder / "lazylibs")
    write(folder / "cfg", "crash.toml", crash_config("../libs/libplain.so"))
    write(folder / "lazy", "crash.toml", crash_config("../lazylibs/libcrash.so", with_lazy=True))
    return folder


def run_crashing(folder: Path, cwd: Path, *sources: str, python_flags=()) -> subprocess.CompletedProcess:
    programs = [str(write(cwd, f"p{i}.vvs", source)) for i, source in enumerate(sources)]
    return subprocess.run([sys.executable, *python_flags, "-m", "voxvm", "run", f"--native-configs={folder}",
                           *programs], capture_output=True, timeout=60, cwd=cwd)


@crash_handler_tests
@pytest.mark.parametrize("code, symbol, signal_name, status", [
    (0x300, "read_at", "SIGSEGV", -11),          # a bad pointer
    (0x301, "give_up", "SIGABRT", -6),           # the library gives up
    (0x302, "deeper", "SIGSEGV", -11),           # it overflows the stack: the handler's own stack
    (0x303, "upstream_read", "SIGSEGV", -11),    # upstream's VMValue ABI
])
def test_a_crash_inside_a_foreign_function_names_it_then_ends_by_the_same_signal(
        crashing, code, symbol, signal_name, status, tmp_path):
    result = run_crashing(crashing / "cfg", tmp_path, f".start\n    uload r1 0\n    ncall 0x{code:x} r0\n    halt\n")
    assert result.returncode == status, result.stderr
    assert result.stderr.decode().splitlines()[-1] == (
        f"voxvm: fatal: {signal_name} in foreign function {symbol} (ncall 0x{code:x}, ../libs/libplain.so); "
        "the process ends")


CALLS_AFTER_A_NAP = ".start\n    uload r1 {ms}\n    ncall 0x304 r0\n    uload r1 0\n    ncall 0x{code:x} r0\n    halt\n"


@crash_handler_tests
def test_the_line_names_the_function_of_the_thread_that_crashed(crashing, tmp_path):
    # Two programs: one sleeps inside a foreign function while the other's crashes; then
    # a stack overflow on a thread of its own (every running thread has a signal stack).
    sleeper = ".start\n    uload r1 3000\n    ncall 0x304 r0\n    halt\n"
    for code, symbol in [(0x300, "read_at"), (0x302, "deeper")]:
        result = run_crashing(crashing / "cfg", tmp_path, sleeper, CALLS_AFTER_A_NAP.format(ms=200, code=code))
        assert result.returncode == -11
        assert result.stderr.decode().splitlines() == [
            f"voxvm: fatal: SIGSEGV in foreign function {symbol} (ncall 0x{code:x}, ../libs/libplain.so); "
            "the process ends"]


@crash_handler_tests
def test_a_library_that_handles_sigsegv_itself_keeps_its_handler(crashing, tmp_path):
    result = run_crashing(crashing / "lazy", tmp_path,
                          ".start\n    uload r1 42\n    ncall 0x305 r0\n    movr r1 r0\n    uload r2 1\n"
                          "    ncall 1 r0\n    halt\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"42\n", b"")


@crash_handler_tests
def test_pythons_faulthandler_keeps_the_signals_it_handles(crashing, tmp_path):
    result = run_crashing(crashing / "cfg", tmp_path, ".start\n    uload r1 0\n    ncall 0x300 r0\n    halt\n",
                          python_flags=("-X", "faulthandler"))
    err = result.stderr.decode()
    assert result.returncode == -11
    assert "Fatal Python error: Segmentation fault" in err and "voxvm: fatal" not in err


@crash_handler_tests
def test_a_long_name_keeps_its_start_and_end_cut_at_characters(crashing, tmp_path):
    folder = tmp_path / ("é" * 110)           # 220 bytes: more than the C entry holds
    folder.mkdir()
    shutil.copy(crashing / "libs" / "libplain.so", folder / "libplain.so")
    write(tmp_path / "cfg", "crash.toml", crash_config(f"../{folder.name}/libplain.so"))
    result = run_crashing(tmp_path / "cfg", tmp_path, ".start\n    uload r1 0\n    ncall 0x300 r0\n    halt\n")
    line = result.stderr.decode("utf-8").splitlines()[-1]       # (strict: valid UTF-8)
    assert result.returncode == -11
    assert line.startswith("voxvm: fatal: SIGSEGV in foreign function read_at (ncall 0x300, ../éé")
    assert "é...é" in line and line.endswith("é/libplain.so); the process ends")


@crash_handler_tests
def test_what_the_program_printed_before_the_crash_is_written_first(crashing, tmp_path):
    # To a pipe: 7 goes through the C print, "hi" through the host's, 8 is still in the C
    # print's buffer when the foreign function crashes (the crash line writes it).
    result = run_crashing(crashing / "cfg", tmp_path,
                          ".start\n    uload r2 1\n    uload r1 7\n    ncall 1 r0\n"
                          "    dsload r1 greeting 0\n    ncall 1 r0\n    uload r1 8\n    ncall 1 r0\n"
                          "    uload r1 0\n    ncall 0x300 r0\n    halt\n"
                          "section data\n    greeting str \"hi\"\n")
    assert (result.returncode, result.stdout) == (-11, b"7\nhi\n8\n")
    assert result.stderr.decode().splitlines()[-1].startswith("voxvm: fatal: SIGSEGV in foreign function read_at")


@crash_handler_tests
def test_a_signal_sent_by_another_process_gets_no_line(crashing, tmp_path):
    # The kernel hands it to any thread, here one sleeping inside a foreign function: that
    # function did not crash. (timeout(1) sends it as a watchdog would.)
    program = write(tmp_path, "p.vvs", ".start\n    uload r1 5000\n    ncall 0x304 r0\n    halt\n")
    result = subprocess.run(["timeout", "--preserve-status", "-s", "ABRT", "1", sys.executable, "-m", "voxvm", "run",
                             f"--native-configs={crashing / 'cfg'}", str(program)],
                            capture_output=True, timeout=60, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (128 + 6, b"")


@crash_handler_tests
def test_a_fatal_signal_outside_foreign_code_gets_no_line(crashing, tmp_path):
    # Once a foreign function is mapped the handler is the process's, but it only speaks
    # for a foreign call on the thread the signal struck (here Python's own abort).
    probe = ("import io, os\n"
             "from voxasm import assemble_program\n"
             "from voxvm.config import VMConfig\n"
             "from voxvm.machine import Machine\n"
             f"Machine(assemble_program('.start\\n    halt\\n', 'p.vvs'), VMConfig(native_configs={str(crashing / 'cfg')!r}),\n"
             "        stdin=io.BytesIO(), stdout=io.BytesIO(), stderr=io.BytesIO()).run()\n"
             "os.abort()\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (-6, b"")
