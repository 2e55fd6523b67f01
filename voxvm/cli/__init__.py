"""The ``voxvm`` console script: the fast path for a plain run, typer for everything else.

Owns ``main()``. The invocation users type most, upstream's
``voxvm --vve=p.vve [--init-ram=16MB ...] [--coredump_exit]``, is recognised
here with a few string comparisons and run without importing typer (which
alone costs ~50 ms of start-up; issue: start-up <= 100 ms). Anything else
(subcommands, ``--help``, ``--vas``, space-separated values, errors in the
flags themselves) goes to the typer application in voxvm/cli/app.py. Both
read their run flags from the one table voxvm.config.RUN_OPTIONS.
"""

from __future__ import annotations

import sys

from ..stdstreams import run_console, say

PROGRAM_FLAGS = {"--vve": "vve", "--vvr": "vvr"}   # the program of a plain run, by kind


def parse_plain_run(args: list[str]) -> dict | None:
    """The options of a plain upstream-style run, or None if typer must look at ``args``.

    Every argument must be ``--vve=FILE``/``--vvr=FILE`` or a run option of
    voxvm.config.RUN_OPTIONS written as ``--flag=VALUE`` (or a bare switch);
    a later occurrence wins, as upstream, except for the programs (each
    ``--vve`` adds one: they run together, docs/concurrency.md) and repeatable
    options (``--shm``), whose values are kept in order as lists.
    """
    from ..config import RUN_OPTION_BY_FLAG, with_bare_values

    options: dict = {}
    for arg in with_bare_values(args):
        name, eq, value = arg.partition("=")
        if eq and name in PROGRAM_FLAGS:
            options.setdefault(PROGRAM_FLAGS[name], []).append(value)
            continue
        option = RUN_OPTION_BY_FLAG.get(name)
        if option is None or option.is_switch == bool(eq):
            return None
        if option.repeat:
            options.setdefault(option.field, []).append(value)
        else:
            options[option.field] = True if option.is_switch else value
    if ("vve" in options) == ("vvr" in options):
        return None  # neither or both: typer explains
    return options


def _run_plain(options: dict) -> int:
    from ..config import config_from_options
    from ..errors import VoxError

    try:
        kind = "vve" if "vve" in options else "vvr"
        paths = options.pop(kind)
        config = config_from_options(**options)
        from .loading import load_paths
        from ..machine import run_programs

        return run_programs(load_paths(paths, kind), config)
    except VoxError as error:
        say(error.render())
        return int(error.exit_status)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point of ``voxvm`` (and ``python -m voxvm``)."""
    args = sys.argv[1:] if argv is None else list(argv)

    def body() -> int | None:
        options = parse_plain_run(args)
        if options is not None:
            return _run_plain(options)
        from ..config import with_bare_values
        from .app import app

        return app(args=with_bare_values(args), prog_name="voxvm", standalone_mode=True)

    run_console("voxvm", body)
