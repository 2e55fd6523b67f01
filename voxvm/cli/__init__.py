"""The ``voxvm`` console script: the fast path for a plain run, typer for everything else.

Owns ``main()``. The invocation users type most, upstream's
``voxvm --vve=p.vve [--init-ram=16MB ...] [--coredump_exit]``, is recognised
here with a few string comparisons and run without importing typer (which
alone costs ~50 ms of start-up; issue: start-up <= 100 ms). Anything else
(subcommands, ``--help``, ``--vas``, space-separated values, errors in the
flags themselves) goes to the typer application in voxvm/cli/app.py, which
owns every flag's help and validation. tests/test_cli.py checks that the two
agree on the flag set.
"""

from __future__ import annotations

import sys

# `--flag=VALUE` options of a plain run -> keyword of config.config_from_options
# (plus vve/vvr, the program). Must match the run options of voxvm/cli/app.py.
RUN_VALUE_FLAGS = {
    "--vve": "vve",
    "--vvr": "vvr",
    "--init-ram": "init_ram",
    "--init-stack-size": "init_stack",
    "--init-heap-size": "init_heap",
    "--max-heap": "max_heap",
    "--max-recursion": "max_recursion",
    "--native-configs": "native_configs",
    "--backend": "backend",
}
RUN_SWITCHES = {
    "--coredump_exit": "coredump_exit",
    "--coredump-exit": "coredump_exit",
    "--gc-stress": "gc_stress",
    "--gc-log": "gc_log",
    "-v": "verbose",
    "--verbose": "verbose",
}


def parse_plain_run(args: list[str]) -> dict | None:
    """The options of a plain upstream-style run, or None if typer must look at ``args``."""
    options: dict = {}
    for arg in args:
        if arg in RUN_SWITCHES:
            options[RUN_SWITCHES[arg]] = True
            continue
        name, eq, value = arg.partition("=")
        if not eq or name not in RUN_VALUE_FLAGS:
            return None
        options[RUN_VALUE_FLAGS[name]] = value  # upstream: a later occurrence wins
    if ("vve" in options) == ("vvr" in options):
        return None  # neither or both: typer explains
    return options


def _run_plain(options: dict) -> int:
    from ..config import config_from_options
    from ..errors import VoxError

    try:
        kind = "vve" if "vve" in options else "vvr"
        path = options.pop(kind)
        config = config_from_options(**options)
        from .loading import load_path
        from ..machine import run_program

        return run_program(load_path(path, kind), config)
    except VoxError as error:
        sys.stdout.flush()
        print(error.render(), file=sys.stderr)
        return int(error.exit_status)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point of ``voxvm`` (and ``python -m voxvm``)."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        options = parse_plain_run(args)
        if options is not None:
            sys.exit(_run_plain(options))
        from .app import app

        app(args=args, prog_name="voxvm", standalone_mode=True)
    except KeyboardInterrupt:
        sys.stderr.write("voxvm: interrupted\n")
        sys.exit(130)
