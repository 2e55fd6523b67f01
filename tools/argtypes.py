"""argparse value types the tools share: a bad count or path is one usage line, exit 2.

A zero or negative count used to surface as a traceback deep inside a
benchmark (``no median for empty data``), or worse as a fuzzer that ran no
case and reported a pass; a ``--source`` folder that does not exist silently
measured the installed voxvm instead. Each type here refuses such a value
while the arguments are parsed (``type=positive_int``).
"""

from __future__ import annotations

import argparse
import math
import os


def positive_int(text: str) -> int:
    """A whole number of at least 1 (repeats, cases, operations, sizes)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of at least 1")
    return value


def nonnegative_int(text: str) -> int:
    """A whole number of at least 0 (a first index, an offset)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of at least 0")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0 (seconds)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number above 0")
    return value


def existing_dir(text: str) -> str:
    """A folder that exists (a checkout given to --source)."""
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"'{text}' is not a folder")
    return text


def writable_file(text: str) -> str:
    """A file that can be created or replaced, checked before a long run rather than after it."""
    folder = os.path.dirname(os.path.abspath(text))
    if os.path.isdir(text) or not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"'{text}' cannot be written (no such folder, or not writable)")
    return text


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
