"""The ``voxasm`` command line (typer): ``voxasm IN.vvs [-o OUT.vve]``.

Owns argument parsing and turning errors into text and exit statuses
(semantics.md §5): 0 success, 2 usage error, 65 assembly error (every error
of the file printed on stderr), 74 a file that cannot be read or written.
The work is ``voxasm.driver.assemble_file`` / ``voxasm.assemble``.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from voxvm.errors import UsageError, VoxError
from voxvm.stdstreams import run_console, say

from .diagnostics import DEFAULT_RENDER_LIMIT, AssemblyError

app = typer.Typer(
    name="voxasm",
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        from voxvm import __version__

        print(f"voxasm {__version__}")
        raise typer.Exit(0)


@app.command(help=(
    "Assemble a .vvs source file into a .vve executable (or a raw .vvr image).\n\n"
    "Errors are printed as FILE:LINE:COL: error: MESSAGE with the source line and a caret; "
    "every error of the file is reported. Exit status: 0 ok, 2 usage error, "
    "65 the source has errors (no output written), 74 a file cannot be read or written. "
    "The language is described in docs/vvs-language.md."))
def assemble_command(
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="The .vvs assembly source file.", show_default=False)],
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", metavar="OUT",
        help="Output file. Default: IN.vvs -> IN.vve; any other input name gets .vve appended. "
             "A name ending in .vvr gets the raw image, anything else a .vve. "
             "Written atomically: on error the file is not created or changed.")] = None,
    fmt: Annotated[Optional[str], typer.Option(
        "--format", metavar="vve|vvr",
        help="Output format, overriding the choice by file name.")] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Only check the source: report errors and warnings, write nothing.")] = False,
    max_errors: Annotated[int, typer.Option(
        "--max-errors", metavar="N", min=0,
        help="Print at most N errors, and N warnings (all are counted); 0 prints all.")]
        = DEFAULT_RENDER_LIMIT,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Do not print warnings.")] = False,
    debug: Annotated[bool, typer.Option(
        "-g", "--debug",
        help="Also write a debug map (source lines, names; docs/debug-maps.md) next to the "
             "output, named OUT.map (prog.vve.map). voxvm and 'voxvm dis' load it from there.")] = False,
    debug_map: Annotated[Optional[str], typer.Option(
        "--debug-map", metavar="PATH", help="Write the debug map to PATH (implies -g).")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version_callback, is_eager=True,
        help="Print the version and exit.")] = False,
) -> None:
    from .driver import WarningPrinter

    warn = None if quiet else WarningPrinter(max_errors)     # warnings are capped as errors are

    try:
        if fmt is not None and fmt not in ("vve", "vvr"):
            raise UsageError(f"--format must be 'vve' or 'vvr', not {fmt!r}")
        if check:
            if output is not None or fmt is not None or debug or debug_map is not None:
                raise UsageError("--check writes nothing; it cannot be combined with -o, --format, "
                                 "-g or --debug-map")
            from .driver import assemble_path

            assemble_path(source, warn=warn)
            return
        from .driver import assemble_file

        if debug_map == "":
            raise UsageError("--debug-map needs a file name")
        assemble_file(source, output, fmt=fmt, warn=warn,
                      debug_map=debug_map if debug_map is not None else ("" if debug else None))
    except AssemblyError as error:
        say(error.render(limit=max_errors))
        raise typer.Exit(int(error.exit_status)) from None
    except VoxError as error:
        say(error.render("voxasm"))
        raise typer.Exit(int(error.exit_status)) from None


def main(argv: Optional[list[str]] = None) -> None:
    """Console-script entry point (``voxasm``, ``python -m voxasm``)."""
    from voxvm.stdstreams import run_app

    run_console("voxasm", lambda: run_app("voxasm", app, argv))
