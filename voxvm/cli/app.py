"""The ``voxvm`` typer application: every command and flag, with its help.

Owns argument parsing and the mapping of ``VoxError`` to exit statuses
(semantics.md §5); every command is a thin wrapper around a library call.
Upstream's flag spellings work as they are (``voxvm --vas=IN.vvs
--vas-out=OUT.vve``, ``voxvm --vve=p.vve --coredump_exit``), next to the
subcommands ``run``, ``dis`` and ``dump``. Heavy modules are imported inside
the commands. The console script enters through voxvm/cli/__init__.py, which runs the
plain upstream-style invocation without importing typer at all.
"""

from __future__ import annotations

import functools
import inspect
import sys
from typing import Annotated, List, Optional

import typer

from .. import config as cfg
from ..errors import ExitStatus, UsageError, VoxError
from ..stdstreams import say

app = typer.Typer(
    name="voxvm",
    add_completion=True,            # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    no_args_is_help=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="voxvm: run .vve/.vvr programs (or .vvs source): 'voxvm FILE' or 'voxvm run FILE'; "
         "assemble with --vas, disassemble with 'dis', inspect core dumps with 'dump', "
         "run expectation tests with 'test'.",
)


def _fail(error: VoxError) -> typer.Exit:
    """Print a domain error the one way users see it, and map it to an exit status."""
    say(error.render())
    return typer.Exit(code=int(error.exit_status))


def with_run_options(command=None, *, without: tuple[str, ...] = ()):
    """Give a typer command every option of voxvm.config.RUN_OPTIONS (but the fields
    ``without``: ``@with_run_options(without=(...))``, so that its help lists only what
    it takes).

    typer reads a command's options from its signature, so the signature is
    extended here from the table (one source for the fast path, typer and the
    tests) and the values reach ``command`` as one dict, ``run_options``,
    keyed by VMConfig field.
    """
    if command is None:
        return lambda command: with_run_options(command, without=without)
    options = [option for option in cfg.RUN_OPTIONS if option.field not in without]
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "run_options"]
    added = []
    for option in options:
        if option.is_switch:
            default = typer.Option(False, *option.flags, help=option.help)
            annotation = bool
        elif option.repeat:
            default = typer.Option(None, *option.flags, metavar=option.metavar, help=option.help)
            annotation = Optional[List[str]]
        else:
            default = typer.Option(None, *option.flags, metavar=option.metavar, help=option.help)
            annotation = Optional[str]
        added.append(inspect.Parameter(option.field, inspect.Parameter.KEYWORD_ONLY,
                                       default=default, annotation=annotation))

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        run_options = {o.field: kwargs.pop(o.field) for o in options}
        return command(*args, run_options=run_options, **kwargs)

    wrapper.__annotations__ = {p.name: p.annotation for p in own + added}
    wrapper.__signature__ = signature.replace(parameters=own + added)
    del wrapper.__wrapped__          # typer must see the extended signature, not the original
    return wrapper


def _run(paths: list[str], kind: Optional[str], config: cfg.VMConfig) -> int:
    from .loading import load_paths
    from ..machine import run_programs

    try:
        return run_programs(load_paths(paths, kind, config.debug_map), config)
    except KeyboardInterrupt:
        # typer would turn Ctrl-C into a silent exit 130; say it the way the plain
        # path does (voxvm/stdstreams.py, run_console).
        say("voxvm: interrupted")
        return int(ExitStatus.INTERRUPTED)


@app.callback(invoke_without_command=True)
@with_run_options
def main_callback(
    ctx: typer.Context,
    vve: Annotated[Optional[List[str]], typer.Option(
        "--vve", metavar="FILE",
        help="Load and run a .vve executable; several run at once, one thread each.")] = None,
    vvr: Annotated[Optional[List[str]], typer.Option(
        "--vvr", metavar="FILE", help="Load and run a raw .vvr image (at address 0); repeatable.")] = None,
    vas: Annotated[Optional[str], typer.Option("--vas", metavar="FILE", help="Assemble a .vvs file and exit (runs nothing).")] = None,
    vas_out: Annotated[Optional[str], typer.Option(
        "--vas-out", metavar="FILE",
        help="Output of --vas: a .vvr name gives a raw image, anything else a .vve. "
             "Default: IN.vvs -> IN.vve (other names get .vve appended).")] = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
    run_options: dict | None = None,
) -> None:
    if version:
        from .. import __version__

        print(f"voxvm {__version__}")
        raise typer.Exit(0)
    if ctx.invoked_subcommand is not None:
        if vve or vvr or vas:
            raise _fail(UsageError("--vve/--vvr/--vas cannot be combined with a subcommand or with a "
                                   "program file named alone (voxvm run A B ... runs several programs)"))
        ctx.obj = run_options
        return
    try:
        if vas is not None:
            # Upstream: --vas assembles and exits without running anything; what would have
            # been run is named, not dropped in silence.
            flag_of = {o.field: o.flags[0] for o in cfg.RUN_OPTIONS}
            unused = [f"--vve={f}" for f in vve or ()] + [f"--vvr={f}" for f in vvr or ()] + [
                flag_of[name] for name, value in run_options.items() if value not in (None, False, [], ())]
            if unused:
                say(f"voxvm: warning: --vas assembles and runs nothing: {' '.join(unused)} not used")
            from voxasm.driver import assemble_file

            assemble_file(vas, vas_out)
            raise typer.Exit(0)
        if vas_out is not None:
            raise UsageError("--vas-out needs --vas")
        if not vve and not vvr:
            raise UsageError("no program given: voxvm FILE, voxvm --vve=FILE or voxvm --vas=FILE "
                             "(see 'voxvm --help')")
        if vve and vvr:
            raise UsageError("give either --vve or --vvr files, not both (voxvm run FILE... "
                             "takes any mix, in order)")
        config = cfg.config_from_options(**run_options)
        raise typer.Exit(_run(list(vve or vvr), "vve" if vve else "vvr", config))
    except VoxError as error:
        raise _fail(error) from None


def _with_outer_options(ctx: typer.Context, run_options: dict) -> dict:
    """A subcommand's run options, with those given before it (``voxvm --gc-log run x.vvs``)
    where it left them unset; the subcommand's own win."""
    outer = ctx.obj or {}
    return {k: (v if v not in (None, False, [], ()) else outer.get(k, v)) for k, v in run_options.items()}


@app.command("run")
@with_run_options
def run_command(
    ctx: typer.Context,
    files: Annotated[List[str], typer.Argument(
        metavar="FILE", help="A .vvs (assembled in memory), .vve or .vvr file; several run at "
                                "once, one thread each (docs/concurrency.md).")],
    run_options: dict | None = None,
) -> None:
    """Run programs; .vvs source is assembled in memory first."""
    merged = _with_outer_options(ctx, run_options)
    try:
        config = cfg.config_from_options(**merged)
        raise typer.Exit(_run(list(files), None, config))
    except VoxError as error:
        raise _fail(error) from None


# The debugger steps and breaks instead: its help does not offer these.
_NOT_IN_DEBUG = ("trace", "trace_file", "trace_limit", "trace_from", "profile", "profile_format")


@app.command("debug")
@with_run_options(without=_NOT_IN_DEBUG)
def debug_command(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE", help="A .vvs (assembled in memory), .vve or .vvr file.")],
    program_input: Annotated[Optional[str], typer.Option(
        "--input", metavar="FILE",
        help="The program's stdin (default: empty input; the debugger reads its commands from stdin).")] = None,
    run_options: dict | None = None,
) -> None:
    """Debug a program: breakpoints, stepping, watchpoints, registers, stacks, heap (gdb's commands)."""
    merged = _with_outer_options(ctx, run_options)
    try:
        config = cfg.config_from_options(**merged)
        outer = ctx.obj or {}               # `voxvm --trace debug FILE`: given before the command
        if any(outer.get(field) not in (None, False) for field in _NOT_IN_DEBUG):
            raise UsageError("voxvm debug does not take --trace or --profile (step and break instead)")
        from ..debugger import Session, line_reader
        from ..host import OutputError
        from ..machine import Machine
        from .loading import load_path, source_text_for

        program = load_path(file, None, config.debug_map)
        data = b""
        if program_input is not None:
            from ..vvefile import read_bytes

            data = read_bytes(program_input)

        def make_machine() -> Machine:
            import io

            return Machine(program, config, stdin=io.BytesIO(data))

        session = Session(program, config, sys.stdout, make_machine, source_text_for(program))
        try:
            interactive = sys.stdin.isatty()
        except (AttributeError, ValueError):
            interactive = False
        try:
            status = session.run_commands(line_reader(sys.stdin, interactive))
        except OutputError as error:
            say(f"voxvm: error: {error}")
            status = int(ExitStatus.IOERR)
        raise typer.Exit(status)
    except VoxError as error:
        raise _fail(error) from None


@app.command("dis")
def dis_command(
    file: Annotated[str, typer.Argument(metavar="FILE", help="A .vve or .vvr file.")],
    listing: Annotated[bool, typer.Option(
        "--listing", help="Show addresses, raw bytes and, with a debug map, the source line of each instruction.")] = False,
    color: Annotated[str, typer.Option(
        "--color", metavar="auto|always|never",
        help="Highlight the source: auto (default) only on a terminal and without NO_COLOR.")] = "auto",
    debug_map: Annotated[Optional[str], typer.Option(
        "--debug-map", metavar="PATH",
        help="The debug map to take names and lines from. Default: FILE.map when it exists.")] = None,
) -> None:
    """Disassemble a program into .vvs source that re-assembles to the same bytes."""
    try:
        if color not in ("auto", "always", "never"):
            raise UsageError(f"--color: '{color}' is not one of auto, always, never")
        from ..disasm import disassemble
        from .loading import load_path, source_text_for

        program = load_path(file, debug_map=debug_map)
        source = source_text_for(program) if listing else None
        sys.stdout.write(_maybe_colored(disassemble(program, listing=listing, source_text=source), color))
    except VoxError as error:
        raise _fail(error) from None


def _maybe_colored(text: str, choice: str) -> str:
    """``text`` highlighted (voxvm/highlight.py) when it goes to a terminal or ``always``."""
    if choice == "never" or (choice == "auto" and not sys.stdout.isatty()):
        return text                  # pipes and files get the plain text, without importing Pygments
    from ..highlight import colorize, wants_color

    return colorize(text) if wants_color(sys.stdout, choice) else text


@app.command("test", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def test_command(
    ctx: typer.Context,
    paths: Annotated[Optional[list[str]], typer.Argument(
        metavar="[DIR|FILE]... [PYTEST OPTIONS]",
        help="Folders or files of programs with '; expect:' headers (default: the current folder). "
             "Anything else is passed to pytest: -k, -x, -n auto, --junitxml=FILE ...")] = None,
) -> None:
    """Run expectation tests (docs/testing.md): a thin front end to pytest and voxvm's plugin."""
    try:
        import pytest
    except ImportError:
        raise _fail(UsageError("'voxvm test' needs pytest: pip install pytest (or voxvm[test])")) from None
    import os

    args = [*(paths or []), *ctx.args]
    # pytest loads the plugin through its entry point, unless plugin autoloading is off.
    load = ["-p", "voxvm"] if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") else []
    raise typer.Exit(int(pytest.main([*load, "--voxvm-tests", *args])))


@app.command("dump")
def dump_command(
    file: Annotated[str, typer.Argument(metavar="FILE", help="A voxvm.dump or voxvm_err.dump file.")],
    debug_map: Annotated[Optional[str], typer.Option(
        "--debug-map", metavar="PATH",
        help="The program's debug map (voxasm -g): functions and source lines by name.")] = None,
) -> None:
    """Print a core dump for people."""
    try:
        from ..dumpview import render_dump
        from ..formats import parse_dump
        from ..formats import read_bytes
        from .loading import read_map, warn_on_stderr

        dump = parse_dump(read_bytes(file), file)
        program = None
        found = read_map(None, debug_map)
        if found is not None:
            if found.describes_memory(dump.memory):
                program = found.program_for_memory(dump.memory, file)
            else:
                warn_on_stderr(f"{found.path} does not describe the program in {file} "
                               f"(its code differs); showing the dump without it")
        sys.stdout.write(render_dump(dump, program))
    except VoxError as error:
        raise _fail(error) from None
