"""The ``voxvm`` console script: the fast path for a plain run, typer for everything else.

Owns ``main()``. The invocation users type most, upstream's
``voxvm --vve=p.vve [--init-ram=16MB ...] [--coredump_exit]``, and its
spellings ``voxvm FILE`` and ``voxvm run FILE`` with ``--flag=VALUE`` options,
are recognised here with a few string comparisons and run without importing
typer (which alone costs several times the rest of a small run's start-up:
docs/performance.md "Start-up"; tests/cli/test_startup_imports.py pins what a
plain run imports); so is upstream's ``voxvm --vas=IN.vvs [--vas-out=OUT]``
(the assembler's whole-process time, docs/performance.md "The assembler").
Anything else (other subcommands, ``--help``, space-separated values, errors
in the flags themselves) goes to the typer application in voxvm/cli/app.py.
Both read their run flags from the one table voxvm.config.RUN_OPTIONS.
"""

from __future__ import annotations

import gc
import os
import sys

from ..stdstreams import exit_without_teardown, run_console, say

PROGRAM_FLAGS = {"--vve": "vve", "--vvr": "vvr"}   # the program of a plain run, by kind
PROGRAM_SUFFIXES = (".vvs", ".vve", ".vvr")        # `voxvm FILE` runs a program file given alone


def parse_plain_run(args: list[str]) -> dict | None:
    """The options of a plain upstream-style run, or None if typer must look at ``args``.

    Every argument must be ``--vve=FILE``/``--vvr=FILE``, a program file
    ending in ``.vvs``/``.vve``/``.vvr`` (``voxvm prog.vvs``, the same as
    ``voxvm run prog.vvs``), or a run option of voxvm.config.RUN_OPTIONS
    written as ``--flag=VALUE`` (or a bare switch); a later occurrence wins,
    as upstream, except for the programs (each ``--vve`` or file adds one:
    they run together, docs/concurrency.md) and repeatable options
    (``--shm``), whose values are kept in order as lists.
    """
    from ..config import RUN_OPTION_BY_FLAG, with_bare_values

    options: dict = {}
    for arg in with_bare_values(args):
        name, eq, value = arg.partition("=")
        if eq and name in PROGRAM_FLAGS:
            options.setdefault(PROGRAM_FLAGS[name], []).append(value)
            continue
        if not arg.startswith("-") and arg.lower().endswith(PROGRAM_SUFFIXES):
            options.setdefault("file", []).append(arg)     # `voxvm prog.vvs`, as `lua prog.lua`
            continue
        option = RUN_OPTION_BY_FLAG.get(name)
        if option is None or option.is_switch == bool(eq):
            return None
        if option.repeat:
            options.setdefault(option.field, []).append(value)
        else:
            options[option.field] = True if option.is_switch else value
    if sum(kind in options for kind in ("vve", "vvr", "file")) != 1:
        return None  # no program, or programs of several spellings: typer explains
    return options


def parse_plain_assembly(args: list[str]) -> tuple[str, str | None] | None:
    """``(source, output or None)`` of ``--vas FILE [--vas-out FILE]`` (``=`` or a
    separate value; a later occurrence wins), or None if typer must look at ``args``."""
    given: dict[str, str] = {}
    position = 0
    while position < len(args):
        name, eq, value = args[position].partition("=")
        if name not in ("--vas", "--vas-out"):
            return None
        if not eq:
            position += 1
            if position == len(args) or args[position].startswith("-"):
                return None
            value = args[position]
        given[name] = value
        position += 1
    if "--vas" not in given:
        return None
    return given["--vas"], given.get("--vas-out")


def _assemble_plain(source: str, output: str | None) -> int:
    from ..errors import VoxError

    try:
        from voxasm.driver import assemble_file

        assemble_file(source, output)
        return 0
    except VoxError as error:
        say(error.render())
        return int(error.exit_status)


def _run_plain(options: dict) -> int:
    from ..config import config_from_options
    from ..errors import VoxError

    try:
        kind = next(k for k in ("vve", "vvr", "file") if k in options)
        paths = options.pop(kind)
        kind = None if kind == "file" else kind      # by its suffix, as `voxvm run FILE`
        config = config_from_options(**options)
        from .loading import load_paths
        from ..machine import run_programs

        programs = load_paths(paths, kind, config.debug_map)
        gc.enable()                      # (main: off during start-up)
        return run_programs(programs, config)
    except VoxError as error:
        say(error.render())
        return int(error.exit_status)


def _program_file_means_run(args: list[str]) -> list[str]:
    """``voxvm prog.vvs --init-ram 1MB`` is ``voxvm run prog.vvs --init-ram 1MB``: the first
    argument that is not an option, when it names a program file, gets ``run`` before it."""
    from ..config import RUN_OPTION_BY_FLAG

    takes_value = {*PROGRAM_FLAGS, "--vas", "--vas-out",
                   *(flag for flag, o in RUN_OPTION_BY_FLAG.items() if not o.is_switch)}
    index = 0
    while index < len(args):
        arg = args[index]
        if not arg.startswith("-"):
            # a program file by its suffix, or any path (no command has a "/" in its name):
            # `voxvm ./dir` then says what is wrong with the path, not "no such command"
            if arg.lower().endswith(PROGRAM_SUFFIXES) or "/" in arg or os.sep in arg:
                return [*args[:index], "run", *args[index:]]
            break
        index += 2 if arg in takes_value else 1      # `--vve FILE`: FILE is the flag's value
    return args


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point of ``voxvm`` (and ``python -m voxvm``).

    As the process's entry (``argv`` None) a plain run or assembly ends the process
    without the interpreter's teardown (voxvm/stdstreams.py exit_without_teardown);
    a caller that passes ``argv`` gets SystemExit, as from every other path.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    finish = exit_without_teardown if argv is None else int
    if argv is None:
        # Start-up (imports, loading) creates only objects that stay alive: a cyclic
        # collection there finds nothing and cost a run about 2.4 M instructions
        # (docs/performance.md "Start-up"). On again before anything a program does.
        gc.disable()

    def body() -> int | None:
        assembly = parse_plain_assembly(args)      # (first: it needs no import)
        if assembly is not None:
            return finish(_assemble_plain(*assembly))
        options = parse_plain_run(args)
        if options is None and args[:1] == ["run"]:
            # `voxvm run FILE [--flag=VALUE ...]` too, when it names its file the same way
            options = parse_plain_run(args[1:])
            if options is not None and "file" not in options:
                options = None           # `run --vve=...` is not a spelling `run` accepts
        if options is not None:
            return finish(_run_plain(options))
        gc.enable()
        from ..config import with_bare_values
        from ..stdstreams import run_app
        from .app import app

        return run_app("voxvm", app, _program_file_means_run(with_bare_values(args)))

    run_console("voxvm", body, entry=argv is None)
