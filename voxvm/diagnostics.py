"""The VM's own lines about exceptions and ``usf`` (semantics.md §9).

Owns what those lines say and how many a run prints: one line per raised
exception for the first ``SHOWN`` of a run, one warning per out-of-range
``usf`` for the first ``SHOWN`` of those, a count of the rest, and the summary
of the exceptions still pending at ``halt`` (with ``--strict``, exit status
70). Every line about exceptions starts ``voxvm: exception``, every line
about ``usf`` starts ``voxvm: warning: usf:``, so either can be filtered.

The cores only record events: a Core calls the sink given to
``Core.set_diagnostics`` with ``(code, ip, a, b)`` for each of the first
``SHOWN`` raises (``code`` = the exception number, 1..11) and the first
``SHOWN`` out-of-range ``usf`` writes (``code`` = ``USF_EVENT``, ``a`` = the
index, ``b`` = the stack depth), in program order, and counts every one
(``Core.diagnostic_totals()``). ``SHOWN`` and ``USF_EVENT`` cross into the C
core through ``vv_tables.h`` (tools/gen_isa.py).
"""

from __future__ import annotations

TYPE_CHECKING = False     # typing costs start-up time; annotations are strings here
if TYPE_CHECKING:
    from typing import Callable

from .errors import shown_name
from .tags import Exc

SHOWN = 10          # lines per kind of event a run prints before it only counts
USF_EVENT = 0       # the event code of an out-of-range usf (exceptions are 1..11)


def location(ip: int, mnemonic: str | None, function: str | None,
             source: str | None, line: int | None) -> str:
    """``at 0x<ip> (<mnemonic>) in <function>, <file>:<line>``, the parts that are known.

    Shared by trap lines (voxvm.traps.Trap) and exception lines, so both name
    a place the same way.
    """
    text = f"at 0x{ip:x}"
    if mnemonic:
        text += f" ({mnemonic})"
    if function:
        text += f" in {function}"
    if line is not None:
        text += f", {shown_name(source)}:{line}" if source else f", line {line}"
    return text


def exception_name(number: int) -> str:
    try:
        return Exc(number).name
    except ValueError:
        return f"exception {number}"


class Diagnostics:
    """Turns one run's core events into ``voxvm:`` lines on the host's stderr.

    ``say`` writes one message (HostIO.diag adds ``voxvm: ``), ``locate(ip)``
    names a code address (voxvm.machine.Machine.locate). ``quiet`` is
    ``--quiet-exceptions``: no line per raised exception and no count of the
    rest; the ``usf`` warnings and the summary at ``halt`` stay.
    """

    def __init__(self, say: Callable[[str], None], locate: Callable[[int], str],
                 quiet: bool = False, strict: bool = False) -> None:
        self.say = say
        self.locate = locate
        self.quiet = quiet
        self.strict = strict

    def event(self, code: int, ip: int, a: int, b: int) -> None:
        """The sink given to ``Core.set_diagnostics``."""
        if code == USF_EVENT:
            self.say(f"warning: usf: stack frame {a} was not updated (stack depth {b})")
        elif not self.quiet:
            self.say(f"exception: {exception_name(code)} {self.locate(ip)}")

    def finish(self, totals: tuple[int, int]) -> None:
        """After the run (halt, trap or interrupt): count what was not shown."""
        raised, usf_writes = totals
        if raised > SHOWN and not self.quiet:
            self.say(f"exception: {raised - SHOWN} more raised "
                     f"(only the first {SHOWN} are shown; --quiet-exceptions hides them)")
        if usf_writes > SHOWN:
            self.say(f"warning: usf: {usf_writes - SHOWN} more stack frames were not updated "
                     f"(only the first {SHOWN} are shown)")

    def at_halt(self, pending: dict[int, int]) -> bool:
        """Summarise the exceptions still pending at ``halt``; True if ``--strict`` fails the run."""
        if not pending:
            return False
        counts = ", ".join(f"{exception_name(number)} {count}" for number, count in sorted(pending.items()))
        text = f"exceptions pending at halt: {counts}"
        if self.strict:
            text += "; exit status 70 (--strict)"
        self.say(text)
        return self.strict
