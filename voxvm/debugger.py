"""The interactive debugger (``voxvm debug FILE``): gdb's commands over a Machine.

Owns the session: the command loop (a prompt with line editing and history
on a terminal, plain lines from a pipe so that scripts drive it; end of input
ends the session as in gdb), breakpoints (``break FILE:LINE|LINE|FUNC|LABEL|
*ADDR`` and ``tbreak``, on the Core's decoded-slot breakpoints, so both
backends stop at full speed), ``step``/``next``/``finish``/``continue``/
``run``/``start``, watchpoints on a register or 8 bytes of main memory or
heap (checked after every instruction, by stepping), and the inspection commands (``info registers``,
``print``, ``x``, ``backtrace``, ``info stack|exceptions|heap|data|
breakpoints|watchpoints``, ``list``). The program's own output goes where it
would without the debugger; the debugger's goes to ``out``, after the
program's pending output. A mistyped name, an address outside memory or an
unknown command is one message, and the session goes on. The session's exit
status is the program's when it ran to its end, else 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TextIO

from .backends import Status
from .backtrace import HEAD, frames, render_frames
from .debugmap import code_end
from .disasm import InstructionNamer, item_text
from .errors import ExitStatus
from .host import OutputError, dispatch
from .isa import BY_CODE, BY_MNEMONIC, DATA_HEADER_SIZE, MAX_SIZE
from .machine import Machine
from .program import Program
from .tracing import flags_text
from .traps import Trap
from .values import format_value

PROMPT = "(vdb) "
MAIN, HEAP, AUTO = "main memory", "heap", "main memory or heap"   # where an address is read
_U64 = 1 << 64
MAX_EXAMINE = 4096          # bytes one x/N shows
LIST_LINES = 10             # source lines one `list` shows, as gdb


def _decimal(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes '²' and '٣', which int() refuses or reads."""
    return text.isascii() and text.isdigit()

_CALLS = {BY_MNEMONIC["call"].code, BY_MNEMONIC["callr"].code}
_HELP = """\
Commands (gdb's names; unique prefixes of the long ones work too):
  run / r                  start the program (again, from the beginning)
  continue / c             run until a breakpoint, watchpoint, halt or trap
  step / s / stepi / si [N]   execute N instructions (default 1)
  next / n / nexti / ni [N]   the same, but a call runs to its return
  finish                   run until the current function returns
  start                    start the program, stopping before its first instruction
  break / b WHERE          FILE:LINE, LINE, FUNCTION, LABEL or *ADDRESS
  tbreak WHERE             a breakpoint deleted at its first hit
  delete / d [N...]        delete breakpoints and watchpoints (all without N)
  watch rN | *ADDRESS      stop when a register or the 8 bytes at an address change
  backtrace / bt           the call stack, innermost first
  info registers [rN...]   registers with their tags, ip and flags
  info breakpoints | watchpoints | stack | exceptions | heap | data | line
  print / p rN | $ip | $flags | NAME    a register, ip, the flags or a data item
  x/N ADDRESS              N bytes (default 16, at most 4096) of main memory or the heap
                           (ADDRESS: a number, a data item, heap:NUMBER, or rN's value)
  list / l [LINE|FUNCTION] source lines around the current (or given) line
  help, quit / q"""


@dataclass
class Breakpoint:
    number: int
    address: int
    where: str
    hits: int = 0
    temporary: bool = False       # tbreak: deleted at its first hit


@dataclass
class Watchpoint:
    number: int
    what: str                 # "r5", "*0x1000" or "*heap:0x10"
    register: int | None
    address: int | None
    value: object
    space: str = AUTO         # where `address` is (MAIN, HEAP, or AUTO: main memory, else the heap)


class Session:
    """One debugging session over ``program`` with run configuration ``config``."""

    def __init__(self, program: Program, config, out: TextIO, make_machine: Callable[[], Machine],
                 source_text: str | None = None) -> None:
        self.program = program
        self.config = config
        self.out = out
        self.make_machine = make_machine
        # the lines as an editor numbers them (no empty "line" after the final newline)
        self.source = source_text.splitlines() if source_text is not None else None
        self.namer = InstructionNamer(program)
        self.breakpoints: dict[int, Breakpoint] = {}
        self.watchpoints: dict[int, Watchpoint] = {}
        self.numbers = 0
        self.machine: Machine | None = None
        self.state = "not started"         # "stopped", "halted", "trapped"
        self.status = 0
        self.list_line: int | None = None
        self.code_end = code_end(program)
        self._instructions: list[tuple[int, int]] | None = None   # (start, end), when first needed
        # .vvs text (instructions, listed source) in colour on a terminal, never in a pipe
        # (voxvm/highlight.py, as `voxvm dis` does)
        from .highlight import wants_color

        self.color = wants_color(out)

    def vvs(self, text: str) -> str:
        """``text``, .vvs code, coloured when the session writes to a terminal."""
        if not self.color:
            return text
        from .highlight import colorize

        return colorize(text)

    # ------------------------------------------------------------------ output

    def say(self, text: str = "") -> None:
        if self.machine is not None:
            try:
                self.machine.io.flush()     # the program's output first, in order
            except OutputError:
                pass
        try:
            self.out.write(text + "\n")
            self.out.flush()
        except (OSError, ValueError) as exc:      # a closed pipe, a full disk: exit 74 (cli/app.py)
            raise OutputError(f"cannot write to stdout: {getattr(exc, 'strerror', None) or exc}") from None

    # ------------------------------------------------------------------ the loop

    def run_commands(self, read_line: Callable[[], str | None]) -> int:
        """Read and execute commands until ``quit`` or end of input; the exit status."""
        last = ""
        while True:
            line = read_line()
            if line is None:
                break
            line = line.strip()
            if not line:
                line = last if last.split()[:1] and last.split()[0] in ("s", "si", "step", "stepi", "n",
                                                                          "ni", "next", "nexti", "c",
                                                                          "continue") else ""
                if not line:
                    continue
            if line.startswith("#"):
                continue
            last = line
            if self.execute(line) is False:
                break
        self.finish_session()
        return self.status

    def finish_session(self) -> None:
        if self.machine is not None:
            try:
                self.machine.io.flush()
            except OutputError:
                pass
            if self.machine.tracer is not None:
                self.machine.tracer.close()

    COMMANDS = {
        "run": "run", "r": "run", "start": "start",
        "continue": "continue", "c": "continue", "cont": "continue",
        "step": "step", "s": "step", "stepi": "step", "si": "step",
        "next": "next", "n": "next", "nexti": "next", "ni": "next",
        "finish": "finish", "fin": "finish",
        "break": "break", "b": "break", "br": "break", "tbreak": "tbreak",
        "delete": "delete", "d": "delete",
        "watch": "watch",
        "backtrace": "backtrace", "bt": "backtrace", "where": "backtrace",
        "info": "info", "i": "info",
        "print": "print", "p": "print",
        "x": "examine",
        "list": "list", "l": "list",
        "help": "help", "h": "help",
        "quit": "quit", "q": "quit", "exit": "quit",
    }

    def execute(self, line: str) -> bool | None:
        """Run one command line; False ends the session."""
        word, _, rest = line.partition(" ")
        if word.startswith("x/") or word == "x":
            return self.cmd_examine(word[2:] if word.startswith("x/") else "", rest.strip())
        name = self.COMMANDS.get(word)
        if name is None:
            matches = sorted({v for k, v in self.COMMANDS.items() if len(word) > 1 and k.startswith(word)})
            name = matches[0] if len(matches) == 1 else None
        if name is None:
            self.say(f'Undefined command: "{word}".  Try "help".')
            return None
        try:
            return getattr(self, "cmd_" + name)(rest.strip())
        except OutputError as error:
            self.say(f"The program's output cannot be written: {error}")
            self.state, self.status = "halted", int(ExitStatus.IOERR)
        except KeyboardInterrupt:
            self.say("\nProgram stopped (interrupted).")
            self.show_location()
        return None

    # ------------------------------------------------------------------ where things are

    def location(self, ip: int) -> str:
        """``0x0055 in total, avg.vvs:21: dsrload r13 r12 nums``."""
        program = self.program
        function = program.function_at(ip) if ip < len(program.image) else None
        text = f"0x{ip:04x} in {function or '(top level)'}"
        where = program.where(ip)
        if where:
            text += f", {where}"
        code = self._code(ip)
        return f"{text}: {self.vvs(self.namer.text(code, ip)) if code else '(outside memory)'}"

    def _code(self, ip: int) -> bytes | None:
        core = self.machine.core if self.machine else None
        for count in range(MAX_SIZE, 0, -1):
            code = core.read_memory(ip, count) if core else (self.program.image[ip:ip + count] or None)
            if code:
                return code
        return None

    def show_location(self) -> None:
        ip = self.machine.core.ip
        self.say(self.location(ip))
        line = self.program.symbols.line_at(ip) if self.program.symbols and ip < self.code_end else None
        if line is not None:
            self.list_line = line

    def resolve(self, text: str) -> tuple[int | None, str]:
        """The code address a breakpoint location names, or None and the reason."""
        program, symbols = self.program, self.program.symbols
        if text.startswith("*"):
            value = program.address_of(text[1:].strip())
            if value is None or text[1:].strip() in (symbols.labels if symbols else {}):
                try:
                    value = int(text[1:].strip(), 0)
                except ValueError:
                    return None, f'Invalid address "{text[1:].strip()}".'
            if not 0 <= value < max(len(program.image), self.config.init_ram):
                return None, f"Cannot access memory at address {value if value < 0 else hex(value)}."
            covering = self._instruction_covering(value)
            if covering is not None and covering != value:
                return None, (f"0x{value:x} is inside the instruction at 0x{covering:x}: a breakpoint there "
                              f"is never reached (break *0x{covering:x}).")
            return value, ""
        file, colon, number = text.rpartition(":")
        if (colon and _decimal(number)) or _decimal(text):
            number = int(number if colon else text)
            if symbols is None or not symbols.lines:
                return None, "No source lines: the program has no debug map (voxasm -g)."
            if colon and not self._same_file(file, symbols.source_path):
                return None, f'No source file named {file}.'
            if number < 1:
                return None, f'Line {number} is out of range for "{symbols.source_path}" (lines count from 1).'
            candidates = [(line, address) for address, line in symbols.lines
                          if address < self.code_end and line >= number]
            if not candidates:
                return None, f'Line {number} is out of range for "{symbols.source_path}".'
            line, address = min(candidates)
            return address, ""
        if symbols is not None and text in symbols.data:
            return None, f'"{text}" is a data item, not code.'
        address = program.address_of(text)
        if address is None or not text or _decimal(text[0]):
            hint = "" if symbols else " (the program has no debug map: use *ADDRESS or func#N)"
            if text[:2].lower() == "0x":             # gdb, too, wants break *0x14
                try:
                    int(text, 16)
                    hint = f" (an address is written *{text})"
                except ValueError:
                    pass
            return None, f'Function or label "{text}" not defined{hint}.'
        return address, ""

    def _instruction_covering(self, address: int) -> int | None:
        """The start of the instruction of the code region that covers ``address`` (None:
        outside the code, or code that does not decode)."""
        from .disasm import covering_start, instruction_spans

        if address >= self.code_end:
            return None
        if self._instructions is None:
            self._instructions = instruction_spans(self.program)
        return covering_start(self._instructions, address)

    @staticmethod
    def _same_file(given: str, recorded: str | None) -> bool:
        if recorded is None:
            return False
        return given == recorded or given.rsplit("/", 1)[-1] == recorded.rsplit("/", 1)[-1]

    # ------------------------------------------------------------------ running

    def _ensure_machine(self) -> Machine:
        if self.machine is None:
            self.machine = self.make_machine()
            for bp in self.breakpoints.values():
                self.machine.core.set_breakpoint(bp.address)
            for wp in self.watchpoints.values():
                wp.value = self._watch_value(wp)
        return self.machine

    def _running(self) -> bool:
        if self.state == "not started":
            self.say("The program is not being run.")
            return False
        if self.state in ("halted", "trapped"):
            self.say(f"The program is not being run (it {self.state}).")
            return False
        return True

    def cmd_run(self, args: str) -> None:
        self._start_again()
        hit = self._breakpoint_at(self.machine.core.ip)
        if hit is not None:                # on the entry instruction: stop before it runs
            self._report_breakpoint(hit)
            return
        self._resume("continue")

    def cmd_start(self, args: str) -> None:
        """gdb's ``start``: run, stopping before the program's first instruction."""
        self._start_again()
        self.show_location()

    def _start_again(self) -> None:
        if self.machine is not None:
            self.finish_session()
            self.machine = None
            self.say("Starting the program again from the beginning.")
        self._ensure_machine()
        self.state, self.status = "stopped", 0      # the previous run's status is gone with it

    def cmd_continue(self, args: str) -> None:
        if self._running():
            self._resume("continue")

    def cmd_step(self, args: str) -> None:
        count = self._count("step", args)
        if count is None:
            return
        if self.state == "not started":
            self._ensure_machine()
            self.state = "stopped"
        if self._running():
            self._repeat("step", count)

    def _repeat(self, mode: str, count: int) -> None:
        """``count`` steps or nexts; the location once at the end, unless a breakpoint, a
        watchpoint, halt or trap stopped it first (each says where)."""
        for _ in range(count):
            if not self._resume(mode):
                return
        self.show_location()

    def cmd_next(self, args: str) -> None:
        count = self._count("next", args)
        if count is None:
            return
        if self.state == "not started":
            self._ensure_machine()
            self.state = "stopped"
        if self._running():
            self._repeat("next", count)

    def cmd_finish(self, args: str) -> None:
        if not self._running():
            return
        if not self.machine.core.call_stack():
            self.say('"finish" not meaningful in the outermost frame.')
            return
        self.say(f"Run till exit from {self.location(self.machine.core.ip)}")
        if self._resume("finish"):
            self.show_location()
            self.say(f"Value returned: r0 = {format_value(*self.machine.core.get_reg(0))}")

    def _count(self, command: str, args: str) -> int | None:
        """``step N``'s N: 1 when not given; None (after saying why) when it is not a count."""
        args = args.strip()
        if not args:
            return 1
        if _decimal(args) and int(args) > 0:
            return int(args)
        self.say(f'{command}: "{args}" is not a count (a whole number of at least 1).')
        return None

    def _resume(self, mode: str) -> bool:
        """Execute until the mode's end; True when stopped there normally (not at a
        breakpoint, a watchpoint, halt or trap, which this reports)."""
        core = self.machine.core
        target_depth = None
        target_ip = None
        if mode == "next":
            code = core.read_memory(core.ip, 1)
            if code and code[0] in _CALLS:
                target_ip, target_depth = core.ip + BY_CODE[code[0]].size, len(core.call_stack())
            else:
                mode = "step"
        elif mode == "finish":
            stack = core.call_stack()
            target_ip, target_depth = stack[-1], len(stack) - 1
        if mode == "step":
            return self._step_once()
        # continue, next over a call, finish: the first instruction is stepped (it may sit on a
        # breakpoint), then full speed with breakpoints; step by step while watchpoints exist.
        temporary = target_ip is not None and target_ip not in {b.address for b in self.breakpoints.values()}
        if temporary:
            core.set_breakpoint(target_ip)
        try:
            if not self._step_once(quiet=True):
                return False
            while True:
                if target_ip is not None and core.ip == target_ip and len(core.call_stack()) == target_depth:
                    return True
                hit = self._breakpoint_at(core.ip)
                if hit is not None:
                    self._report_breakpoint(hit)
                    return False
                # Watchpoints are checked after every instruction; the return address
                # reached by a deeper call (recursion) must be stepped off, or run()
                # would stop on its breakpoint again at once.
                if self.watchpoints or core.ip == target_ip:
                    if not self._step_once(quiet=True):
                        return False
                    continue
                status = core.run()
                if status == Status.BREAK:
                    continue                   # the checks above decide whose it is
                if status == Status.NCALL:
                    dispatch(core, core.ncall_code, self.machine.io)
                    continue
                return self._ended(status)
        finally:
            if temporary:
                core.set_breakpoint(target_ip, False)

    def _step_once(self, quiet: bool = False) -> bool:
        core = self.machine.core
        status = core.step()
        if status == Status.NCALL:
            dispatch(core, core.ncall_code, self.machine.io)
            status = Status.BUDGET
        if status != Status.BUDGET:
            return self._ended(status)
        return not self._watch_changed()

    def _ended(self, status: int) -> bool:
        # The command line's ending (Machine.conclude): diagnostics, --strict, the trap line
        # and the core dump of --coredump_exit.
        machine = self.machine
        if status == Status.HALT:
            self.status = machine.conclude(None)
            self.state = "halted"
            self.show_line_only()                  # `list` shows where it halted
            self.say(f"[program halted at 0x{machine.core.ip:x}, exit status {self.status}]")
            return False
        if status == Status.TRAP:
            trap: Trap = machine.trap()
            self.status = machine.conclude(trap)
            self.state = "trapped"
            self.show_line_only(trap.ip)
            self.say(f"[program trapped at 0x{trap.ip:x}; registers, stacks and memory can still be inspected]")
            return False
        if status == Status.STOP:
            raise KeyboardInterrupt
        raise RuntimeError(f"backend returned unexpected status {status!r}")

    def _breakpoint_at(self, ip: int) -> Breakpoint | None:
        for bp in self.breakpoints.values():
            if bp.address == ip:
                return bp
        return None

    def _report_breakpoint(self, bp: Breakpoint) -> None:
        bp.hits += 1
        kind = "Temporary breakpoint" if bp.temporary else "Breakpoint"
        self.say(f"{kind} {bp.number}, {self.location(bp.address)}")
        self.show_line_only()
        if bp.temporary:
            self.cmd_delete(str(bp.number))

    def show_line_only(self, ip: int | None = None) -> None:
        """Make ``ip`` (default: where the program is) the line ``list`` shows next."""
        ip = self.machine.core.ip if ip is None else ip
        if self.program.symbols and ip < self.code_end:
            self.list_line = self.program.symbols.line_at(ip)

    # ------------------------------------------------------------------ breakpoints, watchpoints

    def cmd_tbreak(self, args: str) -> None:
        self.cmd_break(args, temporary=True)

    def cmd_break(self, args: str, temporary: bool = False) -> None:
        if not args:
            if self.machine is None or self.state != "stopped":
                self.say("No default breakpoint location: the program is not being run.")
                return
            address, reason = self.machine.core.ip, ""
        else:
            address, reason = self.resolve(args)
        if address is None:
            self.say(reason)
            return
        self.numbers += 1
        where = self.program.where(address)
        bp = Breakpoint(self.numbers, address, where or "", temporary=temporary)
        self.breakpoints[bp.number] = bp
        if self.machine is not None:
            self.machine.core.set_breakpoint(address)
        kind = "Temporary breakpoint" if temporary else "Breakpoint"
        self.say(f"{kind} {bp.number} at 0x{address:x}" + (f": {where}." if where else "."))

    def cmd_delete(self, args: str) -> None:
        numbers = args.split()
        if not numbers:
            numbers = [str(n) for n in list(self.breakpoints) + list(self.watchpoints)]
        for text in numbers:
            if not _decimal(text) or (int(text) not in self.breakpoints and int(text) not in self.watchpoints):
                self.say(f"No breakpoint number {text}.")
                continue
            number = int(text)
            bp = self.breakpoints.pop(number, None)
            if bp is not None and self.machine is not None and self._breakpoint_at(bp.address) is None:
                self.machine.core.set_breakpoint(bp.address, False)
            self.watchpoints.pop(number, None)

    def cmd_watch(self, args: str) -> None:
        register = self._register(args)
        address, space = None, AUTO
        if register is None:
            if not args.startswith("*"):
                self.say("Usage: watch rN | watch *ADDRESS | watch *heap:ADDRESS | watch *rN")
                return
            address, space = self._address(args[1:])
            if address is None:
                self.say(space)
                return
        self.numbers += 1
        what = f"r{register}" if register is not None else args
        if register is None and self._register(args[1:]) is not None:     # *rN: the address it held
            what = f"*{'heap:' if space == HEAP else ''}0x{address:x}"
        wp = Watchpoint(self.numbers, what, register, address, None, space)
        unwatchable = f"Cannot watch {args}: it is not inside " + (
            "a live heap block." if space == HEAP else "main memory or a live heap block.")
        if self.machine is not None:
            wp.value = self._watch_value(wp)
            if address is not None and wp.value is None:
                self.numbers -= 1
                self.say(unwatchable)
                return
        elif address is not None and space != HEAP and address + 8 > max(len(self.program.image),
                                                                          self.config.init_ram):
            self.numbers -= 1                 # no heap before the run: only main memory can hold it
            self.say(unwatchable)
            return
        self.watchpoints[wp.number] = wp
        self.say(f"Watchpoint {wp.number}: {wp.what}")

    def _watch_value(self, wp: Watchpoint):
        core = self.machine.core
        if wp.register is not None:
            return core.get_reg(wp.register)
        value = core.read_memory(wp.address, 8) if wp.space != HEAP else None
        return value if value is not None or wp.space == MAIN else core.heap_read(wp.address, 8)

    def _watch_changed(self) -> bool:
        """Report every watchpoint the last instruction changed (each one's saved value moves
        on, so none of them reports the same change again at a later stop)."""
        changed = False
        for wp in self.watchpoints.values():
            new = self._watch_value(wp)
            if new != wp.value:
                old, wp.value = wp.value, new
                self.say(f"\nWatchpoint {wp.number}: {wp.what}\n\nOld value = {self._show_watched(wp, old)}\n"
                         f"New value = {self._show_watched(wp, new)}")
                changed = True
        if changed:
            self.show_location()
        return changed

    @staticmethod
    def _show_watched(wp: Watchpoint, value) -> str:
        if value is None:
            return "<not readable>"
        if wp.register is not None:
            return format_value(*value)
        return " ".join(f"{b:02x}" for b in value)

    @staticmethod
    def _register(text: str) -> int | None:
        text = text.strip().lstrip("$")
        if text.startswith("r") and _decimal(text[1:]) and int(text[1:]) < 32:
            return int(text[1:])
        return None

    # ------------------------------------------------------------------ inspection

    def _inspectable(self) -> bool:
        if self.machine is None:
            self.say("The program has no state yet: 'run', 'step' or 'break' and 'run' first.")
            return False
        return True

    def cmd_backtrace(self, args: str) -> None:
        if not self._inspectable():
            return
        core = self.machine.core
        ip = core.trap_ip if self.state == "trapped" else core.ip
        for line in render_frames(frames(ip, core.call_stack(), self.program, core.read_memory, HEAD)):
            self.say(line)

    def cmd_info(self, args: str) -> None:
        what, _, rest = args.partition(" ")
        table = {"registers": self.info_registers, "r": self.info_registers, "all-registers": self.info_registers,
                 "breakpoints": self.info_breakpoints, "b": self.info_breakpoints,
                 "watchpoints": self.info_breakpoints, "stack": self.info_stack, "s": self.info_stack,
                 "frame": self.info_frame, "exceptions": self.info_exceptions, "heap": self.info_heap,
                 "data": self.info_data, "line": self.info_line}
        handler = table.get(what) or next((h for k, h in table.items() if len(what) > 1 and k.startswith(what)), None)
        if handler is None:
            self.say(f'Undefined info command: "{what}".  Try "help".')
            return
        handler(rest.strip())

    def info_registers(self, args: str) -> None:
        if not self._inspectable():
            return
        core = self.machine.core
        wanted = [self._register(a) for a in args.split()] if args else list(range(32))
        for index in wanted:
            if index is None:
                self.say(f"Invalid register `{args}'")
                return
            bits, tag = core.get_reg(index)
            self.say(f"r{index:<3} 0x{bits:016x}  {format_value(bits, tag)}")
        if not args:
            self.say(f"ip   0x{core.ip:x}")
            of, zf, nf, cf = tuple(core.flags)
            self.say(f"flags [{flags_text((of, zf, nf, cf))}]  OF={of} ZF={zf} NF={nf} CF={cf}")

    def info_breakpoints(self, args: str) -> None:
        if not self.breakpoints and not self.watchpoints:
            self.say("No breakpoints or watchpoints.")
            return
        self.say("Num  Type        Address  What")
        for bp in self.breakpoints.values():
            hits = f"  (hit {bp.hits} time{'s' if bp.hits != 1 else ''})" if bp.hits else ""
            self.say(f"{bp.number:<4} breakpoint  0x{bp.address:04x}   {bp.where}{hits}")
        for wp in self.watchpoints.values():
            self.say(f"{wp.number:<4} watchpoint           {wp.what}")

    def info_stack(self, args: str) -> None:
        if not self._inspectable():
            return
        stack = self.machine.core.snapshot().data_stack
        self.say(f"data stack: {len(stack)} entries (top first)")
        for index in range(len(stack) - 1, max(-1, len(stack) - 33), -1):
            self.say(f"  [{index}] {format_value(*stack[index])}")
        if len(stack) > 32:
            self.say(f"  ... {len(stack) - 32} more")

    def info_frame(self, args: str) -> None:
        self.cmd_backtrace(args)

    def info_exceptions(self, args: str) -> None:
        if not self._inspectable():
            return
        from .isa import Exc

        pending = self.machine.core.pending()
        if not pending:
            self.say("No pending exceptions.")
        for number, count in sorted(pending.items()):
            self.say(f"{Exc(number).name} ({number}) x{count}")

    def info_heap(self, args: str) -> None:
        if not self._inspectable():
            return
        blocks = self.machine.core.snapshot().heap
        self.say(f"heap: {len(blocks)} live blocks, {sum(b[1] for b in blocks)} bytes")
        for address, size, kind, _ in blocks[:64]:
            self.say(f"  0x{address:x}: {size} bytes ({'nogc' if kind else 'gc'})")
        if len(blocks) > 64:
            self.say(f"  ... {len(blocks) - 64} more")

    def info_data(self, args: str) -> None:
        symbols = self.program.symbols
        if symbols is None or not symbols.data:
            self.say("No named data items (the program has no debug map, or no data).")
            return
        for name, offset in sorted(symbols.data.items(), key=lambda x: x[1]):
            self.say(f"{name} = {self._item(name)}")

    def info_line(self, args: str) -> None:
        if not self._inspectable():
            return
        self.say(self.location(self.machine.core.ip))

    def _item(self, name: str) -> str:
        address = self.program.data_base + self.program.symbols.data[name]
        read = self.machine.core.read_memory if self.machine else (
            lambda a, n: self.program.image[a:a + n] if a + n <= len(self.program.image) else None)
        head = read(address, DATA_HEADER_SIZE)
        if head is None:
            return f"<cannot read the item at 0x{address:x}>"
        length = int.from_bytes(head[1:9], "big")
        payload = read(address + DATA_HEADER_SIZE, length) if length <= 1 << 20 else None
        if payload is None:
            return f"<an item of {length} bytes at 0x{address:x}>"
        return item_text(head[0], payload, address)

    def cmd_print(self, args: str) -> None:
        if not args:
            self.say("Usage: print rN | $ip | $flags | NAME")
            return
        register = self._register(args)
        symbols = self.program.symbols
        if register is not None:
            if self._inspectable():
                self.say(f"r{register} = {format_value(*self.machine.core.get_reg(register))}")
        elif args in ("$ip", "$pc", "ip"):
            if self._inspectable():
                self.say(f"$ip = 0x{self.machine.core.ip:x}")
        elif args in ("$flags", "flags"):
            if self._inspectable():
                of, zf, nf, cf = tuple(self.machine.core.flags)
                self.say(f"$flags = [{flags_text((of, zf, nf, cf))}]  OF={of} ZF={zf} NF={nf} CF={cf}")
        elif symbols is not None and args in symbols.data:
            self.say(f"{args} = {self._item(args)}")
        else:
            self.say(f'No symbol "{args}" in current program.')

    def cmd_examine(self, count: str, args: str) -> None:
        if not self._inspectable():
            return
        if count and not (_decimal(count) and 1 <= int(count) <= MAX_EXAMINE):
            self.say(f'x/{count}: the count is a whole number from 1 to {MAX_EXAMINE}.')
            return
        n = int(count) if count else 16
        address, space = self._address(args)
        if address is None:
            self.say(space)
            return
        core = self.machine.core
        data, where = None, MAIN
        if space != HEAP:
            data = core.read_memory(address, n)
        if data is None and space != MAIN:
            data, where = core.heap_read(address, n), HEAP
        if data is None and space != HEAP:
            data, where = self._readable_prefix(address, n), MAIN     # up to the end of main memory
        if not data:
            inside = {MAIN: "inside main memory", HEAP: "inside one live heap block"}.get(
                space, "inside main memory or one live heap block")
            self.say(f"Cannot access memory at address 0x{address:x} ({n} bytes: not {inside}).")
            return
        if len(data) < n:
            self.say(f"(main memory ends at 0x{address + len(data):x}: {len(data)} of {n} bytes)")
        for offset in range(0, len(data), 16):
            chunk = data[offset:offset + 16]
            self.say(f"0x{address + offset:08x} <{where}>:  " + " ".join(f"{b:02x}" for b in chunk))

    def _address(self, text: str) -> tuple[int | None, str]:
        """An address to read, and where: ``0x1a``/``26`` (main memory, else the heap), a
        data item's name (main memory), ``heap:ADDRESS`` (the heap: heap and main-memory
        addresses overlap), or ``rN`` (its value; the heap when it holds an address).
        (None, the message) when it is none of these."""
        text = text.strip()
        register = self._register(text)
        if register is not None:
            if self.machine is None:
                return None, f"{text}: the program has no registers yet ('run' first)."
            bits, tag = self.machine.core.get_reg(register)
            from .tags import Tag

            return bits, HEAP if tag == Tag.ADDR else MAIN
        space = AUTO
        if text.startswith("heap:"):
            space, text = HEAP, text[5:].strip()
        try:
            address = int(text, 0)
        except ValueError:
            symbols = self.program.symbols
            if space == AUTO and symbols and text in symbols.data:
                return self.program.data_base + symbols.data[text], MAIN
            return None, f'Invalid address "{text}".'
        if not 0 <= address < _U64:
            return None, f"Cannot access memory at address {text}: an address is 0 to 2^64-1."
        return address, space

    def _readable_prefix(self, address: int, n: int) -> bytes | None:
        """The longest start of ``n`` bytes at ``address`` inside main memory (None: not one)."""
        core = self.machine.core
        low, high = 0, n                     # read_memory(address, low) works, (…, high + 1) not
        while low < high:
            middle = (low + high + 1) // 2
            if core.read_memory(address, middle) is None:
                high = middle - 1
            else:
                low = middle
        return core.read_memory(address, low) if low else None

    def cmd_list(self, args: str) -> None:
        if self.source is None:
            self.say("No source text: the program has no debug map, or its source file was not found unchanged.")
            return
        center = self.list_line or 1
        if args:
            if _decimal(args):
                center = int(args)
            else:
                address, reason = self.resolve(args)
                if address is None:
                    self.say(reason)
                    return
                center = self.program.symbols.line_at(address) or center
        first = max(1, center - 5)
        last = min(len(self.source), first + LIST_LINES - 1)
        if first > last:
            self.say(f'Line number {first} out of range; "{self.program.symbols.source_path}" has '
                     f'{len(self.source)} lines.')
            return
        for number in range(first, last + 1):
            self.say(f"{number:<6}{self.vvs(self.source[number - 1])}")
        self.list_line = last + 1 + 5          # the next `list` goes on after the last line shown

    def cmd_help(self, args: str) -> None:
        self.say(_HELP)

    def cmd_quit(self, args: str) -> bool:
        return False


def line_reader(stream, interactive: bool) -> Callable[[], str | None]:
    """Commands from a terminal (prompt, line editing and history) or from a pipe (plain lines)."""
    if interactive:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass

        def read() -> str | None:
            try:
                return input(PROMPT)
            except EOFError:
                print()
                return None
        return read

    def read_plain() -> str | None:
        line = stream.readline()
        return line if line else None
    return read_plain

