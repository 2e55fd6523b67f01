"""Run-time configuration of one VM instance, and the one table of run options.

Owns ``VMConfig`` (memory sizes, limits, debug switches; semantics.md §4 and
§3 item 24; the shared segments of ``--shm``, ``SegmentSpec``), ``parse_size``,
``parse_segment`` and ``RUN_OPTIONS``: every run-time flag once,
with its spellings, the VMConfig field it sets, its value parser and its help.
The typer-free fast path (voxvm/cli/__init__.py), the typer application
(voxvm/cli/app.py) and the tests all read that table, so a new flag is added
in one place. Defaults are fixed constants, never derived from host memory,
and are shown in ``voxvm --help``.
"""

from __future__ import annotations

import os

from .errors import UsageError
from .records import record

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

DEFAULT_INIT_RAM = 16 * MIB          # main-memory capacity: image + what dlbc appends
DEFAULT_INIT_STACK = 4096            # data-stack entries reserved up front
MAX_STACK_ENTRIES = 16 * MIB         # data-stack hard limit (entries); overflow is a trap
DEFAULT_INIT_HEAP = 1 * MIB
DEFAULT_MAX_HEAP = 1 * GIB
DEFAULT_MAX_RECURSION = 1000
PROFILE_FORMATS = ("table", "json", "folded")

# Ceilings no flag can raise (docs/resource-limits.md): each bounds the host memory one
# run can take, so a program cannot exhaust the host whatever the flags say.
MAX_INIT_RAM = 4 * GIB               # main memory (the image + what dlbc appends)
MAX_HEAP_CEILING = 16 * GIB          # the heap clamps itself to 16 GiB - 8 (granule counts < 2^31)
MAX_RECURSION_CEILING = 16 * MIB     # call-stack frames (8 bytes each: 128 MiB)
MAX_SEGMENT_SIZE = 16 * GIB          # one --shm segment (docs/concurrency.md)
MAX_SEGMENTS = 64                    # --shm flags in one run

_UNITS = {"": 1, "b": 1, "kb": KIB, "k": KIB, "mb": MIB, "m": MIB, "gb": GIB, "g": GIB}
_DIGITS = frozenset("0123456789")


def parse_size(text: str, flag: str = "size") -> int:
    """Parse ``4096``, ``64KB``, ``1.5MB``, ``1GB`` (case-insensitive, binary units).

    >>> parse_size("1.5MB")
    1572864
    >>> parse_size("4096")
    4096
    """
    # NUMBER[.FRACTION] [UNIT], ASCII only (no regular expression: start-up, issue #11)
    body = text.strip()
    split = len(body)
    while split and body[split - 1].isascii() and body[split - 1].isalpha():
        split -= 1
    number, unit = body[:split].rstrip(), body[split:].lower()
    whole, dot, fraction = number.partition(".")
    if (not whole or not _DIGITS.issuperset(whole) or (dot and (not fraction or not _DIGITS.issuperset(fraction)))
            or unit not in _UNITS):
        raise UsageError(f"{flag}: '{text}' is not a size (examples: 4096, 64KB, 1.5MB, 1GB)")
    if fraction.strip("0") and _UNITS[unit] == 1:      # 1.5 bytes: not rounded to a size nobody typed
        raise UsageError(f"{flag}: '{text}' is not a whole number of bytes (a fraction needs a unit: 1.5KB)")
    value = round(float(number) * _UNITS[unit])
    if value >= 1 << 63:
        raise UsageError(f"{flag}: '{text}' is too large")
    return value


def parse_count(text: str, flag: str) -> int:
    """A non-negative decimal integer flag value, or a usage error."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()):     # ('²'.isdigit() is true too)
        raise UsageError(f"{flag}: '{text}' is not a non-negative integer")
    return int(text)


class SegmentSpec(record("SegmentSpec", "size path", defaults=(None,))):
    """One ``--shm`` flag: a shared segment of ``size`` bytes, anonymous (``path`` None) or
    backed by the file ``path``."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"{self.size}" + (f":{self.path}" if self.path is not None else "")


def parse_segment(text: str, flag: str = "--shm") -> SegmentSpec:
    """``SIZE`` or ``SIZE:PATH`` (the path is everything after the first colon).

    >>> parse_segment("64KB:/tmp/x:y")
    SegmentSpec(size=65536, path='/tmp/x:y')
    """
    if text.startswith("="):           # `-m=4096`: a short option's value keeps the "="
        text = text[1:]
    size_text, colon, path = text.partition(":")
    size = parse_size(size_text, flag)
    if not 0 < size <= MAX_SEGMENT_SIZE:
        raise UsageError(f"{flag}: '{text}': a segment is 1 byte to {format_size(MAX_SEGMENT_SIZE)} "
                         f"(see docs/concurrency.md)")
    if colon and not path:
        raise UsageError(f"{flag}: '{text}': the file name after ':' is missing")
    if "\0" in path:
        raise UsageError(f"{flag}: '{text}': a file name cannot contain a NUL byte")
    return SegmentSpec(size, path if colon else None)


def parse_segments(values, flag: str = "--shm") -> tuple[SegmentSpec, ...]:
    """Every ``--shm`` value of a run, in flag order (a str or SegmentSpec each)."""
    if values is None:
        return ()
    if isinstance(values, (str, SegmentSpec)):
        values = [values]
    specs = tuple(v if isinstance(v, SegmentSpec) else parse_segment(v, flag) for v in values)
    if len(specs) > MAX_SEGMENTS:
        raise UsageError(f"{flag}: {len(specs)} segments; at most {MAX_SEGMENTS} per run")
    return specs


def parse_grants(values, flag: str) -> str | None:
    """Every value of a grant flag (``--allow-net``, ``--allow-read``, ``--allow-write``), in
    order, as one comma-separated list: given twice, the grants add up (semantics.md §8);
    a bare ``--allow-net`` (every address) takes in any narrower one."""
    texts = [os.fspath(value) for value in values]
    if not texts:                       # the API's allow_net=[]: nothing granted
        return None
    if any(not text.strip() for text in texts):   # `--allow-net=$HOSTS`, HOSTS unset: never "all"
        what = ("address list; give HOST:PORT,... (or the bare --allow-net for every address)"
                if flag == "--allow-net" else "folder list")
        raise UsageError(f"{flag}: an empty {what}")
    if flag == "--allow-net" and any(text.strip() == "*" for text in texts):
        return "*"
    return ",".join(texts)


def format_size(n: int) -> str:
    """Human form of a byte count, e.g. ``16MB``, ``1.5KB``, ``100B``."""
    for unit, scale in (("GB", GIB), ("MB", MIB), ("KB", KIB)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f}".rstrip("0").rstrip(".") + unit
    return f"{n}B"


# VMConfig's fields and defaults, in order. A record (voxvm/records.py), not a dataclass
# or namedtuple: their machinery costs more start-up time than a whole small run.
_CONFIG_FIELDS = {
    "init_ram": DEFAULT_INIT_RAM,
    "init_stack": DEFAULT_INIT_STACK,
    "max_stack": MAX_STACK_ENTRIES,
    "init_heap": DEFAULT_INIT_HEAP,
    "max_heap": DEFAULT_MAX_HEAP,
    "max_recursion": DEFAULT_MAX_RECURSION,
    "native_configs": None,          # a folder or one .toml file (docs/ffi.md)
    "coredump_exit": False,
    "gc_stress": False,
    "gc_log": False,
    "verbose": False,
    "backend": None,                 # "cython", "python" or None (default choice)
    "seed": None,                    # randf/randint: a fixed seed makes runs reproducible
    "quiet_exceptions": False,       # no stderr line per raised exception (semantics.md §9)
    "strict": False,                 # exceptions still pending at halt: exit status 70
    # Capabilities (semantics.md §8, voxvm/host/capabilities.py): the flags as given.
    "allow_run": False,
    "allow_net": None,               # None: no network; "*": any address; else HOST:PORT,...
    "sandbox": False,
    "allow_read": None,              # folders a sandboxed program may read, comma-separated
    "allow_write": None,             # ... and write (fdelete counts as a write)
    # Shared segments (--shm, docs/concurrency.md): SegmentSpecs, numbered 0, 1, ... in flag order.
    "shm": (),
    # Debugging (docs/debugging.md): the debug map to use, the trace and the profile.
    "debug_map": None,               # None: PROGRAM.map when it exists
    "trace": False,
    "trace_file": None,              # None: stderr
    "trace_limit": None,             # None: no limit
    "trace_from": None,              # a label, function or address
    "profile": None,                 # None: no profile; "-": the table on stderr; else a file
    "profile_format": None,          # table, json or folded; None: by the file name
}


class VMConfig(record("VMConfig", _CONFIG_FIELDS, defaults=_CONFIG_FIELDS.values())):
    """Everything that shapes one VM run: ``VMConfig(init_heap=..., ...)``, immutable.

    Each VM instance owns its own copy; out-of-range values are a UsageError
    naming the flag.
    """

    __slots__ = ()

    def __new__(cls, *args, **fields):
        config = super().__new__(cls, *args, **fields)
        shm = config.shm
        if (not isinstance(shm, tuple) or isinstance(shm, SegmentSpec)
                or not all(isinstance(spec, SegmentSpec) for spec in shm)):
            config = config._replace(shm=parse_segments(shm))   # texts (--shm values) or one spec
        config._check()
        return config

    def _check(self) -> None:
        for flag, value, ceiling in (
                ("--init-ram", self.init_ram, MAX_INIT_RAM),
                ("--init-stack-size", self.init_stack, MAX_STACK_ENTRIES),
                ("--init-heap-size", self.init_heap, MAX_HEAP_CEILING),
                ("--max-heap", self.max_heap, MAX_HEAP_CEILING),
                ("--max-recursion", self.max_recursion, MAX_RECURSION_CEILING),
                ("--seed", self.seed or 0, (1 << 64) - 1)):
            if not 0 <= value <= ceiling:
                limit = ceiling if flag in ("--init-stack-size", "--max-recursion", "--seed") else format_size(ceiling)
                raise UsageError(f"{flag}: {value} is out of range (at most {limit}; "
                                 f"see docs/resource-limits.md)")
        if self.init_heap > self.max_heap:
            raise UsageError(f"--init-heap-size ({format_size(self.init_heap)}) is larger than "
                             f"--max-heap ({format_size(self.max_heap)})")
        if self.backend not in (None, "cython", "python"):
            raise UsageError(f"--backend: '{self.backend}' is not one of cython, python")
        if self.profile_format not in (None, *PROFILE_FORMATS):
            raise UsageError(f"--profile-format: '{self.profile_format}' is not one of {', '.join(PROFILE_FORMATS)}")
        if self.profile_format is not None and self.profile is None:
            raise UsageError("--profile-format needs --profile")
        if self.profile == "-" and self.profile_format in ("json", "folded"):
            raise UsageError(f"--profile-format={self.profile_format} needs a file: --profile=PATH "
                             f"(stderr gets the table)")
        if self.profile == "":
            raise UsageError("--profile=PATH: the file name is empty")
        if self.tracing and self.profile is not None:
            raise UsageError("--trace and --profile cannot be combined (a traced run's times mean nothing)")
        if self.sandbox and self.native_configs is not None:
            # FFI libraries are native code with every access of the process (semantics.md §8).
            raise UsageError("--sandbox refuses --native-configs: a native library could do "
                             "anything the sandbox forbids")

    @property
    def tracing(self) -> bool:
        """Any of the trace flags asks for a trace (--trace-file, --trace-limit, --trace-from imply --trace)."""
        return bool(self.trace or self.trace_file is not None or self.trace_limit is not None
                    or self.trace_from is not None)

    @property
    def stack_limit(self) -> int:
        """Data-stack maximum in entries: the fixed maximum (--init-stack-size cannot exceed it)."""
        return min(max(self.max_stack, self.init_stack), MAX_STACK_ENTRIES)


class RunOption(record("RunOption", "flags field help metavar parse bare_value repeat",
                           defaults=(None, None, None, False))):
    """One run-time flag: ``--flag=VALUE`` (``metavar`` set) or a switch (``metavar`` None).

    ``flags``: the accepted spellings, the canonical one first; ``field``: the
    VMConfig field it sets; ``parse(text, flag) -> value`` (None: the text is the
    value); ``bare_value``: what a value flag given without ``=VALUE`` means;
    ``repeat``: the flag may be given several times and every value counts, in order
    (``parse`` then gets the list).
    """

    __slots__ = ()

    @property
    def is_switch(self) -> bool:
        return self.metavar is None


def _option(flags: tuple[str, ...], field: str, help: str, metavar: str | None = None,
            parse=None, bare_value: str | None = None, repeat: bool = False) -> RunOption:
    """A RunOption from the table's keywords. Positional construction is the record's fast
    path: 28 keyword constructions cost a run 0.6 M instructions (docs/performance.md
    "Start-up")."""
    return RunOption(flags, field, help, metavar, parse, bare_value, repeat)


RUN_OPTIONS: tuple[RunOption, ...] = (
    _option(("--init-ram",), "init_ram", metavar="SIZE", parse=parse_size,
            help=f"Main-memory capacity (image + dlbc code). Default {format_size(DEFAULT_INIT_RAM)}."),
    _option(("--init-stack-size",), "init_stack", metavar="SIZE",
            parse=parse_size,
            help=f"Data-stack entries reserved up front (grows to {MAX_STACK_ENTRIES} entries). "
                 f"Default {DEFAULT_INIT_STACK}."),
    _option(("--init-heap-size",), "init_heap", metavar="SIZE", parse=parse_size,
            help=f"Initial heap size. Default {format_size(DEFAULT_INIT_HEAP)}."),
    _option(("--max-heap",), "max_heap", metavar="SIZE", parse=parse_size,
            help=f"Largest the heap may grow to. Default {format_size(DEFAULT_MAX_HEAP)}."),
    _option(("--max-recursion",), "max_recursion", metavar="N", parse=parse_count,
            help=f"Call-depth limit; deeper calls trap. Default {DEFAULT_MAX_RECURSION}."),
    _option(("--native-configs",), "native_configs", metavar="DIR",
            help="Directory of FFI *.toml configs (nconfigs/)."),
    _option(("--coredump_exit", "--coredump-exit"), "coredump_exit",
            help="Write voxvm.dump after halt (voxvm_err.dump after a trap)."),
    _option(("--gc-stress",), "gc_stress", help="Collect garbage before every allocation."),
    _option(("--gc-log",), "gc_log", help="Report every garbage collection on stderr."),
    _option(("-v", "--verbose"), "verbose", help="Print sizes and GC reports on stderr."),
    _option(("--backend",), "backend", metavar="NAME",
            help="Execution backend: cython (default) or python (the slow reference). "
                 "Also VOXVM_BACKEND=python."),
    _option(("--seed",), "seed", metavar="N", parse=parse_count,
            help="Seed randf/randint, so that two runs (on either backend) draw the same numbers."),
    _option(("--quiet-exceptions",), "quiet_exceptions",
            help="Do not print a line on stderr for each raised voxvm exception."),
    _option(("--strict",), "strict",
            help="Exit with status 70 when exceptions are still pending at halt."),
    _option(("--allow-run",), "allow_run", help="Let the program run shell commands (runcmd)."),
    _option(("--allow-net",), "allow_net", metavar="[=HOST:PORT,...]", bare_value="*",
            parse=parse_grants, repeat=True,
            help="Let the program use the network: every address, or only these "
                 "(HOST:* for any port of a host; literal addresses or localhost). "
                 "Repeatable: the grants add up."),
    _option(("--sandbox",), "sandbox",
            help="No files (unless --allow-read/--allow-write), no commands, no network, no FFI."),
    _option(("--allow-read",), "allow_read", metavar="DIR,...", parse=parse_grants, repeat=True,
            help="With --sandbox: folders the program may read files in (repeatable)."),
    _option(("--allow-write",), "allow_write", metavar="DIR,...", parse=parse_grants, repeat=True,
            help="With --sandbox: folders the program may write (and delete) files in (repeatable)."),
    _option(("--shm", "-m"), "shm", metavar="SIZE[:PATH]", parse=parse_segments, repeat=True,
            help="Add a shared segment, numbered 0, 1, ... in flag order (ncalls 0x33-0x39): "
                 "SIZE zero-filled bytes, or the file PATH mapped (created or zero-extended to "
                 "SIZE, never shrunk, kept). Repeatable; -m is avmir's spelling."),
    _option(("--debug-map",), "debug_map", metavar="PATH",
            help="The debug map to use (voxasm -g writes one). Default: PROGRAM.map when it exists."),
    _option(("--trace",), "trace",
            help="Print every executed instruction on stderr: address, function, source line, "
                 "the instruction, the registers it changed, the flags (docs/debugging.md)."),
    _option(("--trace-file",), "trace_file", metavar="PATH",
            help="Write the trace to PATH instead of stderr (implies --trace)."),
    _option(("--trace-limit",), "trace_limit", metavar="N", parse=parse_count,
            help="Trace at most N instructions, then run on untraced (implies --trace)."),
    _option(("--trace-from",), "trace_from", metavar="WHERE",
            help="Start the trace when execution reaches a label, function or address "
                 "(implies --trace)."),
    _option(("--profile",), "profile", metavar="[=PATH]", bare_value="-",
            help="After the run, print instruction counts and time per function, opcode and "
                 "source line, and call counts, on stderr (or write them to PATH)."),
    _option(("--profile-format",), "profile_format", metavar="FORMAT",
            help="Profile output: table (default), json (default for a .json PATH) or folded "
                 "(folded stacks for flame-graph tools)."),
)
RUN_OPTION_BY_FLAG: dict[str, RunOption] = {flag: o for o in RUN_OPTIONS for flag in o.flags}


def config_from_options(**options) -> VMConfig:
    """A VMConfig from run options as the command line or the embedding API gives them,
    keyed by VMConfig field; None or a missing key means the default.

    Switches are booleans. A value option takes the flag's text, parsed here
    (usage errors name the flag), or what the API also allows (docs/api.md):
    an int for a size or count, a path object for a file, a list of texts for a
    comma-separated list or for ``shm``, True for a flag that may stand alone
    (``allow_net=True`` is ``--allow-net``). Anything else is a UsageError, never
    a TypeError from deep inside the run.
    """
    settings = {}
    by_field = {o.field: o for o in RUN_OPTIONS}
    for name, value in options.items():
        option = by_field.get(name)
        if option is None:
            raise TypeError(f"config_from_options: unknown run option {name!r}")
        if value is not None:
            settings[name] = _option_value(option, value)
    return VMConfig(**settings)


def _option_value(option: RunOption, value):
    """``value`` of ``option`` checked and parsed (config_from_options)."""
    name, flag = option.field, option.flags[0]
    if option.is_switch:
        if not isinstance(value, bool):
            raise UsageError(f"{name}: expected True or False, not {value!r}")
        return value
    if value is True and option.bare_value is not None:
        value = option.bare_value
    if option.repeat:                                   # shm and the grants: one value or several
        item = (str, SegmentSpec) if name == "shm" else (str, os.PathLike)
        values = [value] if isinstance(value, item) else value
        if not isinstance(values, (list, tuple)) or not all(isinstance(v, item) for v in values):
            example = "'64KB' or '64KB:PATH'" if name == "shm" else f"'{option.metavar.lstrip('[=').rstrip(']')}'"
            raise UsageError(f"{name}: expected a text such as {example}, or a list of them, not {value!r}")
        return option.parse(values, flag)
    if option.parse is not None:                        # sizes and counts
        if isinstance(value, str):
            return option.parse(value, flag)
        if isinstance(value, int) and not isinstance(value, bool):
            return value                                # its range is VMConfig's check
        raise UsageError(f"{name}: expected an int or a text such as '{'64KB' if option.metavar == 'SIZE' else '3'}', "
                         f"not {value!r}")
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise UsageError(f"{name}: expected a text, not {value!r}")
    return value


def with_bare_values(args: list[str]) -> list[str]:
    """``args`` with every value flag that may stand alone (``--allow-net``) given its value."""
    return [f"{arg}={RUN_OPTION_BY_FLAG[arg].bare_value}"
            if arg in RUN_OPTION_BY_FLAG and RUN_OPTION_BY_FLAG[arg].bare_value is not None else arg
            for arg in args]


def config_from_args(args: list[str], **overrides) -> VMConfig:
    """A VMConfig from run flags as typed (``--init-ram=1MB`` or ``--init-ram 1MB``,
    ``--gc-stress``; a later one wins)."""
    options: dict = {}
    args = with_bare_values(args)
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        name, eq, value = arg.partition("=")
        option = RUN_OPTION_BY_FLAG.get(name)
        if option is not None and not option.is_switch and not eq and index < len(args):
            value, eq = args[index], "="              # the value as the next argument, as click takes it
            index += 1
        if option is None or option.is_switch == bool(eq):
            raise UsageError(f"{arg}: not a run option" if option is None else
                             f"{arg}: {'takes no value' if option.is_switch else 'needs a value'}")
        if option.repeat:
            options.setdefault(option.field, []).append(value)
        else:
            options[option.field] = True if option.is_switch else value
    options.update(overrides)
    return config_from_options(**options)
