"""The ``voxvm`` typer application: every command and flag, with its help.

Owns argument parsing and the mapping of ``VoxError`` to exit statuses
(decisions.md §5); every command is a thin wrapper around a library call.
Upstream's flag spellings work as they are (``voxvm --vas=IN.vvs
--vas-out=OUT.vve``, ``voxvm --vve=p.vve --coredump_exit``), next to the
subcommands ``run``, ``dis`` and ``dump``. Heavy modules are imported inside
the commands. The console script enters through voxvm/cli/__init__.py, which runs the
plain upstream-style invocation without importing typer at all.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from .. import config as cfg
from ..errors import ExitStatus, UsageError, VoxError

app = typer.Typer(
    name="voxvm",
    add_completion=False,
    no_args_is_help=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="voxvm: run .vve/.vvr programs (or .vvs source), assemble with --vas, "
         "disassemble with 'dis', inspect core dumps with 'dump'.",
)


def _fail(error: VoxError) -> typer.Exit:
    """Print a domain error the one way users see it, and map it to an exit status."""
    sys.stdout.flush()
    print(error.render(), file=sys.stderr)
    return typer.Exit(code=int(error.exit_status))


# Run-time options shared by the legacy flags and `voxvm run`.
InitRam = Annotated[Optional[str], typer.Option(
    "--init-ram", metavar="SIZE",
    help=f"Main-memory capacity (image + dlbc code). Default {cfg.format_size(cfg.DEFAULT_INIT_RAM)}.")]
InitStack = Annotated[Optional[str], typer.Option(
    "--init-stack-size", metavar="SIZE",
    help=f"Data-stack entries reserved up front (grows to {cfg.MAX_STACK_ENTRIES} entries). "
         f"Default {cfg.DEFAULT_INIT_STACK}.")]
InitHeap = Annotated[Optional[str], typer.Option(
    "--init-heap-size", metavar="SIZE",
    help=f"Initial heap size. Default {cfg.format_size(cfg.DEFAULT_INIT_HEAP)}.")]
MaxHeap = Annotated[Optional[str], typer.Option(
    "--max-heap", metavar="SIZE",
    help=f"Largest the heap may grow to. Default {cfg.format_size(cfg.DEFAULT_MAX_HEAP)}.")]
MaxRecursion = Annotated[Optional[str], typer.Option(
    "--max-recursion", metavar="N",
    help=f"Call-depth limit; deeper calls trap. Default {cfg.DEFAULT_MAX_RECURSION}.")]
NativeConfigs = Annotated[Optional[str], typer.Option(
    "--native-configs", metavar="DIR", help="Directory of FFI *.toml configs (nconfigs/).")]
CoredumpExit = Annotated[bool, typer.Option(
    "--coredump_exit", "--coredump-exit",
    help="Write voxvm.dump after halt (voxvm_err.dump after a trap).")]
GcStress = Annotated[bool, typer.Option("--gc-stress", help="Collect garbage before every allocation.")]
GcLog = Annotated[bool, typer.Option("--gc-log", help="Report every garbage collection on stderr.")]
Verbose = Annotated[bool, typer.Option("-v", "--verbose", help="Print sizes and GC reports on stderr.")]
Backend = Annotated[Optional[str], typer.Option(
    "--backend", metavar="NAME",
    help="Execution backend: cython (default) or python (the slow reference). "
         "Also VOXVM_BACKEND=python.")]


def _run(path: str, kind: Optional[str], config: cfg.VMConfig) -> int:
    from .loading import load_path
    from ..machine import run_program

    return run_program(load_path(path, kind), config)


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    vve: Annotated[Optional[str], typer.Option("--vve", metavar="FILE", help="Load and run a .vve executable.")] = None,
    vvr: Annotated[Optional[str], typer.Option("--vvr", metavar="FILE", help="Load and run a raw .vvr image (at address 0).")] = None,
    vas: Annotated[Optional[str], typer.Option("--vas", metavar="FILE", help="Assemble a .vvs file and exit (runs nothing).")] = None,
    vas_out: Annotated[Optional[str], typer.Option(
        "--vas-out", metavar="FILE",
        help="Output of --vas: a .vvr name gives a raw image, anything else a .vve. "
             "Default: IN.vvs -> IN.vve (other names get .vve appended).")] = None,
    init_ram: InitRam = None,
    init_stack: InitStack = None,
    init_heap: InitHeap = None,
    max_heap: MaxHeap = None,
    max_recursion: MaxRecursion = None,
    native_configs: NativeConfigs = None,
    coredump_exit: CoredumpExit = False,
    gc_stress: GcStress = False,
    gc_log: GcLog = False,
    verbose: Verbose = False,
    backend: Backend = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        from .. import __version__

        print(f"voxvm {__version__}")
        raise typer.Exit(0)
    if ctx.invoked_subcommand is not None:
        if vve or vvr or vas:
            raise _fail(UsageError("--vve/--vvr/--vas cannot be combined with a subcommand"))
        ctx.obj = dict(init_ram=init_ram, init_stack=init_stack, init_heap=init_heap, max_heap=max_heap,
                       max_recursion=max_recursion, native_configs=native_configs,
                       coredump_exit=coredump_exit, gc_stress=gc_stress, gc_log=gc_log,
                       verbose=verbose, backend=backend)
        return
    try:
        if vas is not None:
            # Upstream: --vas assembles and exits without running anything.
            from voxasm.driver import assemble_file

            assemble_file(vas, vas_out)
            raise typer.Exit(0)
        if vas_out is not None:
            raise UsageError("--vas-out needs --vas")
        if vve is None and vvr is None:
            print(ctx.get_help())
            raise typer.Exit(int(ExitStatus.USAGE))
        if vve is not None and vvr is not None:
            raise UsageError("give either --vve or --vvr, not both")
        config = cfg.config_from_options(
            init_ram=init_ram, init_stack=init_stack, init_heap=init_heap, max_heap=max_heap,
            max_recursion=max_recursion, native_configs=native_configs,
            coredump_exit=coredump_exit, gc_stress=gc_stress, gc_log=gc_log, verbose=verbose,
            backend=backend)
        raise typer.Exit(_run(vve or vvr, "vve" if vve else "vvr", config))
    except VoxError as error:
        raise _fail(error) from None


@app.command("run")
def run_command(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE", help="A .vvs (assembled in memory), .vve or .vvr file.")],
    init_ram: InitRam = None,
    init_stack: InitStack = None,
    init_heap: InitHeap = None,
    max_heap: MaxHeap = None,
    max_recursion: MaxRecursion = None,
    native_configs: NativeConfigs = None,
    coredump_exit: CoredumpExit = False,
    gc_stress: GcStress = False,
    gc_log: GcLog = False,
    verbose: Verbose = False,
    backend: Backend = None,
) -> None:
    """Run a program; .vvs source is assembled in memory first."""
    outer = ctx.obj or {}
    local = dict(init_ram=init_ram, init_stack=init_stack, init_heap=init_heap, max_heap=max_heap,
                 max_recursion=max_recursion, native_configs=native_configs,
                 coredump_exit=coredump_exit, gc_stress=gc_stress, gc_log=gc_log,
                 verbose=verbose, backend=backend)
    merged = {k: (local[k] if local[k] not in (None, False) else outer.get(k, local[k])) for k in local}
    try:
        config = cfg.config_from_options(**merged)
        raise typer.Exit(_run(file, None, config))
    except VoxError as error:
        raise _fail(error) from None


@app.command("dis")
def dis_command(
    file: Annotated[str, typer.Argument(metavar="FILE", help="A .vve or .vvr file.")],
    listing: Annotated[bool, typer.Option("--listing", help="Show addresses and raw bytes.")] = False,
) -> None:
    """Disassemble a program into .vvs source that re-assembles to the same bytes."""
    try:
        from ..disasm import disassemble
        from .loading import load_path

        program = load_path(file)
        sys.stdout.write(disassemble(program, listing=listing))
    except VoxError as error:
        raise _fail(error) from None


@app.command("dump")
def dump_command(
    file: Annotated[str, typer.Argument(metavar="FILE", help="A voxvm.dump or voxvm_err.dump file.")],
) -> None:
    """Print a core dump for people."""
    try:
        from ..dumpview import render_dump
        from ..formats import parse_dump
        from ..formats import read_bytes

        sys.stdout.write(render_dump(parse_dump(read_bytes(file), file)))
    except VoxError as error:
        raise _fail(error) from None
