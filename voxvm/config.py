"""Run-time configuration of one VM instance and the parsing of size flags.

Owns ``VMConfig`` (memory sizes, limits, debug switches; decisions.md §4 and
§3 item 24) and ``parse_size``. Defaults are fixed constants, never derived
from host memory, and are shown in ``voxvm --help``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import UsageError

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

DEFAULT_INIT_RAM = 16 * MIB          # main-memory capacity: image + what dlbc appends
DEFAULT_INIT_STACK = 4096            # data-stack entries reserved up front
MAX_STACK_ENTRIES = 16 * MIB         # data-stack hard limit (entries); overflow is a trap
DEFAULT_INIT_HEAP = 1 * MIB
DEFAULT_MAX_HEAP = 1 * GIB
DEFAULT_MAX_RECURSION = 1000

_UNITS = {"": 1, "b": 1, "kb": KIB, "k": KIB, "mb": MIB, "m": MIB, "gb": GIB, "g": GIB}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_size(text: str, flag: str = "size") -> int:
    """Parse ``4096``, ``64KB``, ``1.5MB``, ``1GB`` (case-insensitive, binary units).

    >>> parse_size("1.5MB")
    1572864
    >>> parse_size("4096")
    4096
    """
    match = _SIZE_RE.match(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise UsageError(f"{flag}: '{text}' is not a size (examples: 4096, 64KB, 1.5MB, 1GB)")
    value = round(float(match.group(1)) * _UNITS[unit])
    if value >= 1 << 63:
        raise UsageError(f"{flag}: '{text}' is too large")
    return value


def parse_count(text: str, flag: str) -> int:
    """A non-negative decimal integer flag value, or a usage error."""
    text = text.strip()
    if not text.isdigit():
        raise UsageError(f"{flag}: '{text}' is not a non-negative integer")
    return int(text)


def format_size(n: int) -> str:
    """Human form of a byte count, e.g. ``16MB``, ``1.5KB``, ``100B``."""
    for unit, scale in (("GB", GIB), ("MB", MIB), ("KB", KIB)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f}".rstrip("0").rstrip(".") + unit
    return f"{n}B"


@dataclass(frozen=True)
class VMConfig:
    """Everything that shapes one VM run. Each VM instance owns its own copy."""

    init_ram: int = DEFAULT_INIT_RAM
    init_stack: int = DEFAULT_INIT_STACK
    max_stack: int = MAX_STACK_ENTRIES
    init_heap: int = DEFAULT_INIT_HEAP
    max_heap: int = DEFAULT_MAX_HEAP
    max_recursion: int = DEFAULT_MAX_RECURSION
    native_configs: str | None = None
    coredump_exit: bool = False
    gc_stress: bool = False
    gc_log: bool = False
    verbose: bool = False
    backend: str | None = None       # "cython", "python" or None (default choice)

    def __post_init__(self) -> None:
        if self.init_heap > self.max_heap:
            raise UsageError(f"--init-heap-size ({format_size(self.init_heap)}) is larger than "
                             f"--max-heap ({format_size(self.max_heap)})")
        if self.backend not in (None, "cython", "python"):
            raise UsageError(f"--backend: '{self.backend}' is not one of cython, python")

    @property
    def stack_limit(self) -> int:
        """Data-stack maximum in entries: the fixed maximum, or more if reserved."""
        return max(self.max_stack, self.init_stack)


def config_from_options(*, init_ram: str | None = None, init_stack: str | None = None,
                        init_heap: str | None = None, max_heap: str | None = None,
                        max_recursion: str | None = None, **settings) -> VMConfig:
    """A VMConfig from command-line strings (sizes and counts parsed here, usage errors raised).

    ``settings`` are the remaining VMConfig fields as they are (native_configs,
    coredump_exit, gc_stress, gc_log, verbose, backend).
    """
    sizes = {}
    if init_ram is not None:
        sizes["init_ram"] = parse_size(init_ram, "--init-ram")
    if init_stack is not None:
        sizes["init_stack"] = parse_size(init_stack, "--init-stack-size")
    if init_heap is not None:
        sizes["init_heap"] = parse_size(init_heap, "--init-heap-size")
    if max_heap is not None:
        sizes["max_heap"] = parse_size(max_heap, "--max-heap")
    if max_recursion is not None:
        sizes["max_recursion"] = parse_count(max_recursion, "--max-recursion")
    return VMConfig(**settings, **sizes)
