"""The voxvm command line: the fast path, the typer application and the tests share one flag table."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from voxvm.cli import PROGRAM_FLAGS, parse_plain_run
from voxvm.cli.app import app
from voxvm.config import RUN_OPTION_BY_FLAG, RUN_OPTIONS, VMConfig, config_from_args, config_from_options
from voxvm.errors import UsageError

NOT_RUN_OPTIONS = {"--vas", "--vas-out", "--version", "-h", "--help", "--install-completion",
                   "--show-completion"}


def _option_names(command) -> set[str]:
    names = set()
    for param in command.params:
        names.update(getattr(param, "opts", []))
        names.update(getattr(param, "secondary_opts", []))
    return {n for n in names if n.startswith("-")}


def test_the_typer_app_offers_exactly_the_run_options_of_the_table():
    group = typer.main.get_command(app)
    root = _option_names(group) - NOT_RUN_OPTIONS
    assert root == set(RUN_OPTION_BY_FLAG) | set(PROGRAM_FLAGS)
    # `voxvm run FILE` takes the same run options (the program comes as an argument).
    run = _option_names(group.commands["run"]) - NOT_RUN_OPTIONS
    assert run == root - {"--vve", "--vvr"}


def test_every_run_option_sets_a_config_field_through_the_fast_path():
    for option in RUN_OPTIONS:
        assert option.field in VMConfig._fields
        for flag in option.flags:
            arg = flag if option.is_switch else f"{flag}=1"
            value = True if option.is_switch else ["1"] if option.repeat else "1"
            assert parse_plain_run(["--vve=p.vve", arg]) == {"vve": ["p.vve"], option.field: value}


def test_config_from_args_reads_the_table_and_rejects_strangers():
    assert config_from_args(["--init-ram=1MB", "--gc-stress", "--coredump-exit"]) == VMConfig(
        init_ram=1024 * 1024, gc_stress=True, coredump_exit=True)
    for bad in (["--unknown=1"], ["--gc-stress=1"], ["--init-ram"], ["--init-ram=lots"]):
        with pytest.raises(UsageError):
            config_from_args(bad)


@pytest.mark.parametrize("args", [
    [],
    ["--vve=a.vve", "--vvr=b.vvr"],
    ["--vve", "a.vve"],               # space-separated: typer's job
    ["run", "a.vvs"],
    ["--vve=a.vve", "--unknown=1"],
    ["--vas=a.vvs"],
    ["--help"],
])
def test_anything_unusual_goes_to_typer(args):
    assert parse_plain_run(args) is None


def test_plain_run_options_build_the_same_config_as_typer_would():
    options = parse_plain_run(["--vve=p.vve", "--init-ram=1MB", "--max-recursion=50",
                               "--coredump_exit", "-v", "--init-ram=2MB"])
    assert options.pop("vve") == ["p.vve"]
    config = config_from_options(**options)
    assert config == VMConfig(init_ram=2 * 1024 * 1024, max_recursion=50, coredump_exit=True,
                              verbose=True)


@pytest.mark.parametrize("args,status", [
    (["--vve=/nonexistent/p.vve"], 74),
    (["--vve", "/nonexistent/p.vve"], 74),
    (["--vve=/dev/null"], 65),
    (["--vve=x.vve", "--init-ram=12Q"], 2),
    (["--vve", "x.vve", "--init-ram", "12Q"], 2),
    (["--vve=x.vve", "--max-recursion=-1"], 2),
    (["--vve=x.vve", "--max-recursion=²"], 2),       # '²'.isdigit() is true; int() refuses it
    (["--vve=x.vve", "--seed=٣"], 2),                # an Arabic-Indic 3: not read as 3
    ([], 2),
    (["--no-such-flag"], 2),
])
def test_exit_statuses_are_the_same_on_both_paths(args, status, tmp_path):
    result = subprocess.run([sys.executable, "-m", "voxvm", *args], capture_output=True,
                            stdin=subprocess.DEVNULL, timeout=60, cwd=tmp_path)
    assert result.returncode == status, result.stderr
    assert b"Traceback" not in result.stderr
    if status not in (0, 2):
        assert result.stderr.startswith(b"voxvm: error: ")


# ------------------------------------------------------------------ conventions (issue 13 item 7)

PROGRAM = "section text\n.start\n    uload r1 7\n    uload r2 1\n    ncall 0x01 r0\n    halt\n"


def _cli(tmp_path, *args: str, tool: str = "voxvm") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", tool, *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)


def test_a_program_file_given_alone_runs(tmp_path):
    (tmp_path / "p.vvs").write_text(PROGRAM)
    assert _cli(tmp_path, "--vas=p.vvs").returncode == 0
    for args in (["p.vvs"], ["p.vve"], ["--seed=3", "p.vvs"], ["p.vvs", "--init-ram", "1MB"]):
        result = _cli(tmp_path, *args)
        assert (result.returncode, result.stdout, result.stderr) == (0, "7\n", ""), args
    missing = _cli(tmp_path, "missing.vvs")
    assert (missing.returncode, missing.stderr) == (74, "voxvm: error: missing.vvs: cannot read: "
                                                        "No such file or directory\n")


@pytest.mark.parametrize("tool, args", [
    ("voxvm", ["--vve="]),
    ("voxvm", ["--vvr="]),
    ("voxvm", ["run", ""]),
    ("voxvm", ["--vas="]),
    ("voxasm", [""]),
])
def test_an_empty_input_file_name_is_a_usage_error(tmp_path, tool, args):
    result = _cli(tmp_path, *args, tool=tool)
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr == f"{tool}: error: the input file name is empty (see '{tool} --help')\n"


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "voxvm: error: no such option: --bogus"),
    (["run"], "voxvm: error: missing argument 'FILE' (see 'voxvm run --help')"),
    (["frob"], "voxvm: error: no such command 'frob' (see 'voxvm --help')"),
    (["run", "p.vvs", "--max-heap"], "voxvm: error: option '--max-heap' requires an argument"),
    (["dis"], "voxvm: error: missing argument 'FILE' (see 'voxvm dis --help')"),
    ([], "voxvm: error: no program given: voxvm FILE, voxvm --vve=FILE or voxvm --vas=FILE"),
    (["--vve=p.vve", "p.vvs"], "voxvm: error: --vve/--vvr/--vas cannot be combined with a subcommand or "
                               "with a program file named alone"),
])
def test_every_usage_error_is_one_voxvm_line_with_status_2(tmp_path, args, message):
    result = _cli(tmp_path, *args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(message), result.stderr


def test_vas_names_the_flags_it_does_not_use(tmp_path):
    (tmp_path / "p.vvs").write_text(PROGRAM)
    result = _cli(tmp_path, "--vas=p.vvs", "--vve=p.vve", "--strict")
    assert (result.returncode, result.stdout) == (0, "") and (tmp_path / "p.vve").exists()
    assert result.stderr == "voxvm: warning: --vas assembles and runs nothing: --vve=p.vve --strict not used\n"


def test_voxasm_usage_errors_are_one_line_too(tmp_path):
    result = _cli(tmp_path, "--bogus", tool="voxasm")
    assert (result.returncode, result.stderr) == (2, "voxasm: error: no such option: --bogus "
                                                     "(see 'voxasm --help')\n")


def test_shell_completion_is_offered(tmp_path):
    result = _cli(tmp_path, "--show-completion", "bash")
    assert result.returncode == 0 and "_VOXVM_COMPLETE" in result.stdout
    completion = subprocess.run([sys.executable, "-m", "voxvm"], cwd=tmp_path, capture_output=True, text=True,
                                timeout=60, env={**__import__("os").environ, "_VOXVM_COMPLETE": "complete_bash",
                                                 "COMP_WORDS": "voxvm di", "COMP_CWORD": "1"})
    assert "dis" in completion.stdout.split()


def test_a_path_given_alone_is_run_and_its_problem_named(tmp_path):
    (tmp_path / "adir").mkdir()
    for path, message in (("./adir", "voxvm: error: ./adir: is a directory, not a file\n"),
                          ("./none", "voxvm: error: ./none: cannot read: No such file or directory\n")):
        result = _cli(tmp_path, path)
        assert (result.returncode, result.stderr) == (74, message)


def test_a_utf16_source_is_named_as_such(tmp_path):
    (tmp_path / "u.vvs").write_bytes("halt\n".encode("utf-16"))
    result = _cli(tmp_path, "u.vvs", tool="voxasm")
    assert result.returncode == 65
    assert result.stderr.startswith("u.vvs:1:1: error: this file is UTF-16 text; .vvs source must be UTF-8\n")
