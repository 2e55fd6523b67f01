"""The machine driver: the programs of a run, from start to exit status.

Owns the choice of backend (``--backend``, else ``VOXVM_BACKEND``, else the
compiled core when ``voxvm.backends.compiled._core`` provides ``Core``, else the pure-Python
reference), the FFI libraries of ``--native-configs`` (loaded by
voxvm/host/ffi.py, installed in the core), the loop around ``Core.run()``
(native calls the core does not run in its own C native table go to voxvm.host,
traps turned into voxvm.traps.Trap), the exit status (0 halt, 70 trap, 74 when
the program's output cannot be written), the trap line on stderr
(semantics.md §5), the exception diagnostics and the summary at halt of
semantics.md §9 (voxvm/diagnostics.py; ``--strict`` makes pending exceptions
at halt exit status 70) and the core dumps of semantics.md §3.26 (``voxvm.dump`` after
halt, ``voxvm_err.dump`` after a trap, both only with --coredump_exit).
Ctrl-C: while a run is in progress on the main thread, SIGINT asks the Core to
stop (``Core.request_stop``, which also stops its loop when the loop runs on
another thread) and raises KeyboardInterrupt, which interrupts a native that
blocks (``sleep``, ``input``); the console script turns it into
``voxvm: interrupted`` and exit status 130 (docs/resource-limits.md).
Nothing is written to stdout except the program's own output (semantics.md §3.24).

Every Machine belongs to a run (voxvm/threads.py ``RunThreads``: thread ids, spawn,
join, the shared segments, one output lock). ``run_programs`` runs several
programs at once, each on its own OS thread (the first on the caller's), and
returns the run's exit status (docs/concurrency.md); ``run_program`` is the
one-program case.
"""

from __future__ import annotations

import os
import _signal as signal   # not the signal module: it builds enums (start-up, docs/performance.md)

from .backends import Status
from .config import VMConfig, format_size
from .diagnostics import Diagnostics, location
from .errors import ExitStatus, UsageError, VoxError
from .threads import MAX_LIVE_THREADS, STOP_GRACE_SECONDS, RunThreads
from .host.io import HostIO, OutputError
from .program import Program

BACKENDS = ("cython", "python")
DUMP_AFTER_HALT = "voxvm.dump"
DUMP_AFTER_TRAP = "voxvm_err.dump"


def _trap_class() -> type:
    """voxvm.traps.Trap, imported when first needed: a run that never traps (or never
    raises at all) does without the trap table and its messages (start-up)."""
    from .traps import Trap

    return Trap


def compiled_core_class():
    """``voxvm.backends.compiled._core.Core`` if the compiled core is built and provides it, else None."""
    try:
        from .backends.compiled import _core
    except ImportError:
        return None
    return getattr(_core, "Core", None)


def select_backend(config: VMConfig) -> str:
    """The backend name this run uses (see the module docstring)."""
    name = config.backend or os.environ.get("VOXVM_BACKEND") or None
    if name is None:
        return "cython" if compiled_core_class() is not None else "python"
    name = name.strip().lower()
    if name not in BACKENDS:
        raise UsageError(f"VOXVM_BACKEND: '{name}' is not one of {', '.join(BACKENDS)}")
    return name


def create_core(backend: str, program: Program, config: VMConfig):
    """A fresh Core of the named backend."""
    if backend == "python":
        from .backends.reference.core import PyCore as core_class
    else:
        core_class = compiled_core_class()
        if core_class is None:
            raise UsageError("the cython backend is not available (voxvm.backends.compiled._core was not built or "
                             "has no Core); use --backend=python")
    try:
        return core_class(program, config)
    except MemoryError:
        raise VoxError(f"not enough memory to start the VM (heap {format_size(config.init_heap)}, "
                       f"data stack {config.init_stack} entries)") from None


class Machine:
    """A program, its Core and its host streams. ``run()`` raises Trap on a trap."""

    def __init__(self, program: Program, config: VMConfig | None = None, stdin=None,
                 stdout=None, stderr=None, *, group: RunThreads | None = None,
                 thread_id: int | None = None, argument: tuple[int, int] | None = None) -> None:
        """``group``: the run it belongs to (None: a run of its own, registered as thread 0).
        ``argument``: a spawned thread's r1 ``(bits, tag)``; its first ``ret`` then ends it."""
        self.program = program
        self.config = config or VMConfig()
        own_group = group is None
        if own_group:
            group = RunThreads(self.config)
        self.group = group
        self.thread_id = group.reserve_id() if thread_id is None else thread_id
        seed = self.config.seed
        if seed is not None and self.thread_id:
            seed = f"{seed}:{self.thread_id}"        # each thread its own reproducible generator
        self.io = HostIO(stdin, stdout, stderr, seed=seed, lock=group.output_lock,
                         input_lock=group.input_lock)
        self.io.group, self.io.thread_id, self.io.stop_event = group, self.thread_id, group.stop_event
        if argument is not None:
            self.io.label = f"thread {self.thread_id}: "
        flags = self.config
        if flags.allow_run or flags.allow_net is not None or flags.sandbox or flags.allow_read or flags.allow_write:
            from .host.capabilities import Capabilities   # its rules are checked before the run
            self.io.capabilities = Capabilities.from_config(flags)
        # else the default grants, which capabilities.granted() makes when a native first asks
        # (a run that uses no file, network or process native never imports the module)
        self.backend = select_backend(self.config)
        # FFI (docs/ffi.md): configs are checked before the core exists (a malformed one is
        # ConfigError, exit 65, before anything runs); libraries that fail to load only warn.
        # Loaded once per run; every thread's Core gets every function.
        if self.config.native_configs is not None and group.ffi is None:
            from .host.ffi import load_native_configs

            group.ffi = load_native_configs(self.config.native_configs, self.io.diag)
        self.ffi = group.ffi
        if self.ffi is not None:
            # A foreign function may end the process at any call: the host then holds no
            # output of its own, and the crash line writes what the C print still holds
            # (csrc/vv_crash.h), so the program's output up to the crash is all there.
            self.io.write_through = True
        self.core = create_core(self.backend, program, self.config)
        try:
            self._set_up_core(group)
        except MemoryError:            # the native table and buffers, after the core's own memory
            raise VoxError("not enough memory to start the VM (its native table and buffers)") from None
        # thread_id and the shared-memory natives run in the compiled core's C table
        # (csrc/vv_shm.h); the reference core calls voxvm/host/shm.py.
        install_shm = getattr(self.core, "install_shm", None)
        if install_shm is not None:
            install_shm(self.thread_id, [segment.mapping for segment in group.segments])
        if argument is not None:
            self.core.set_reg(1, *argument)
            self.core.end_on_return()
        if own_group:
            connect_spawning(group, self.config, self.io)
            group.register(self)
        # --trace and --profile follow the run's first thread (docs/debugging.md).
        self.tracer, self.trace_from = self._make_tracer() if self.thread_id == 0 else (None, None)
        self.profile_data: dict | None = None
        # A --profile=PATH that cannot be written is said now, not after the whole run.
        self._profile_refused = self.thread_id == 0 and self._profile_path_refused()

    def _set_up_core(self, group) -> None:
        """Give the new Core its foreign functions, Python natives, log and diagnostics sinks,
        and stdout."""
        if self.ffi is not None:
            self.ffi.install(self.core, self.io)
        self.io.extra_natives.update(group.python_natives)      # the embedding API's (voxvm/embed.py)
        self.core.set_log(self.io.diag)
        self.diagnostics = Diagnostics(self.io.diag, self.locate, quiet=self.config.quiet_exceptions,
                                       strict=self.config.strict)
        self.core.set_diagnostics(self.diagnostics.event)
        # The compiled core prints numbers to stdout inside its loop (its C native
        # table) and hands the bytes to HostIO; the reference core always calls host/.
        self.core.set_stdout(self.io.take_stdout)

    def _make_tracer(self):
        """The Tracer of --trace (None without it, or when its file or start cannot be used:
        a warning, and the run goes on untraced), and the address --trace-from names."""
        config, program = self.config, self.program
        if not config.tracing:
            return None, None
        from .tracing import STDERR_PREFIX, Tracer, TraceOutputError   # only for a trace (start-up)

        start = None
        if config.trace_from is not None:
            start = program.address_of(config.trace_from)
            if start is None or start >= len(program.image):
                known = "labels and functions" if program.symbols else "func#N and addresses (no debug map)"
                self.io.diag(f"warning: --trace-from: '{config.trace_from}' is no label, function or "
                             f"address of {program.path} (it knows {known}); the run goes on untraced")
                return None, None
            from .disasm import covering_start, instruction_spans

            covering = covering_start(instruction_spans(program), start)
            if covering is not None and covering != start:
                self.io.diag(f"warning: --trace-from: 0x{start:x} is inside the instruction at "
                             f"0x{covering:x}, so the run never reaches it; the run goes on untraced")
                return None, None
        if config.trace_file is None:
            report = self.io.report
            return Tracer(program, lambda line: report(STDERR_PREFIX + line), config.trace_limit), start
        try:
            return Tracer.to_file(program, config.trace_file, config.trace_limit), start
        except TraceOutputError as error:
            self.io.diag(f"warning: {error}; the run goes on untraced")
            return None, None

    def _profile_path_refused(self) -> bool:
        """Warn and say so when --profile=PATH names a place no file can be written."""
        path = self.config.profile
        if path is None or path == "-":
            return False
        folder = os.path.dirname(path) or os.curdir
        problem = ("Is a directory" if os.path.isdir(path) else
                   "No such file or directory" if not os.path.isdir(folder) else
                   "Permission denied" if not os.access(path if os.path.exists(path) else folder, os.W_OK)
                   else None)
        if problem is not None:
            self.io.diag(f"warning: cannot write the profile to {path}: {problem}; "
                         "the run goes on without a profile")
        return problem is not None

    @property
    def profiling(self) -> bool:
        return self.config.profile is not None and self.thread_id == 0 and not self._profile_refused

    def run(self, budget: int = -1) -> bool:
        """Run until halt (True); raise Trap if the program traps.

        ``budget`` > 0 bounds the run to that many branch events (semantics.md
        §20), counted across native calls: False when it ran out first. After
        ``group.stop_for_limit(reason)`` the run returns False as well (the
        embedding API's limits, voxvm/embed.py); any other stop (Ctrl-C) raises
        KeyboardInterrupt. ``run`` may be called again to go on. With --trace, the traced
        part runs first, one ``Core.step()`` per instruction (the budget counts only what
        follows it); with --profile, the Core's profiling loop runs.
        """
        if self.config.verbose:
            self._report_sizes()
        if self.thread_id == 0:
            self._warn_about_unused_grants()
        previous = self._catch_sigint()
        try:
            if self.profiling:
                self.core.enable_profile()
            if self.tracer is not None and self.tracer.active and self._run_traced():
                return True
            return bool(self._run_until(budget, None))
        finally:
            if self.profiling:
                self.profile_data = self.core.profile_data()   # before the trap report takes time
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            if self.tracer is not None and not self.tracer.active:
                self.tracer.close()

    def _run_until(self, budget: int, breakpoint: int | None) -> bool | None:
        """Run at full speed: True at halt, False when the budget ran out or a run limit
        stopped it, None when ``breakpoint`` was reached (it is removed); raise Trap on a trap."""
        core, io = self.core, self.io
        while True:
            status = core.run(budget)
            if status == Status.NCALL:
                if budget > 0:
                    budget = core.budget_left
                from .host.registry import dispatch   # at the first native not run in C (start-up)

                dispatch(core, core.ncall_code, io)
            elif status == Status.HALT:
                return True
            elif status == Status.TRAP:
                raise self.trap()
            elif status == Status.BUDGET:
                return False
            elif status == Status.STOP:
                if self.group.limit_reason is not None:
                    return False
                raise KeyboardInterrupt
            elif status == Status.BREAK and core.ip == breakpoint:
                core.set_breakpoint(breakpoint, False)
                return None
            else:
                raise RuntimeError(f"backend returned unexpected status {status!r}")

    def _run_traced(self) -> bool:
        """The traced part of a run (voxvm/tracing.py), one ``Core.step()`` per instruction:
        True when the program halted, False when the trace ended first (the caller runs on)."""
        from .host.registry import dispatch
        from .tracing import TraceOutputError, read_code

        core, io, tracer = self.core, self.io, self.tracer
        if self.trace_from is not None:
            start, self.trace_from = self.trace_from, None
            core.set_breakpoint(start)
            if self._run_until(-1, start) is not None:
                tracer.active = False
                return True
        while tracer.active:
            ip = core.ip
            code = read_code(core.read_memory, ip)
            before = core.registers()
            status = core.step()
            if status == Status.NCALL:
                dispatch(core, core.ncall_code, io)
            note = {Status.HALT: "halt", Status.TRAP: "trap"}.get(status)
            if status == Status.STOP:
                raise KeyboardInterrupt
            try:
                tracer.record(ip, code, before, core.registers(), core.flags, note)
            except TraceOutputError as error:
                io.diag(f"warning: {error}; the run goes on untraced")
                tracer.active = False
            if status == Status.HALT:
                tracer.active = False
                return True
            if status == Status.TRAP:
                tracer.active = False
                raise self.trap()
        return False

    def _catch_sigint(self):
        """Route SIGINT to every Core of the run (module docstring); the handler replaced, or None.

        Only on the main thread (the only one Python delivers signals to) and only
        when SIGINT has Python's default handler: an embedding program's own
        handler (or the run's, installed by run_programs) is left alone.
        """
        return self.group.catch_sigint()

    def dump_name(self, name: str) -> str:
        """``voxvm.dump`` for thread 0; ``voxvm.N.dump`` for thread N, so dumps never clobber."""
        if not self.thread_id:
            return name
        stem, dot, suffix = name.rpartition(".")
        return f"{stem}.{self.thread_id}.{suffix}"

    def run_to_status(self, interruptible: bool = True) -> int:
        """Run, report a trap (and write dumps), flush; return the exit status.

        KeyboardInterrupt (Ctrl-C, or the run stopping) propagates when
        ``interruptible``, else it is status 130 with no message (another thread says it).
        """
        io, diagnostics = self.io, self.diagnostics
        try:
            try:
                finished = self.run(self.group.budget)
            except _trap_class() as trap:   # evaluated only when something was raised
                status = self.conclude(trap)
            else:
                if not finished:            # a run limit of the embedding API (voxvm/embed.py)
                    self.group.stop_for_limit("max_steps", self.thread_id)   # unless a limit came first
                    io.flush()
                    diagnostics.finish(self.core.diagnostic_totals())
                    return int(ExitStatus.TIMED_OUT)
                status = self.conclude(None)
        except OutputError as error:
            io.diag(f"error: {error}")
            return int(ExitStatus.IOERR)
        except KeyboardInterrupt:
            try:
                io.flush()               # keep the output produced so far
                diagnostics.finish(self.core.diagnostic_totals())
            except OutputError:
                pass
            if interruptible:
                raise
            return int(ExitStatus.INTERRUPTED)
        except Exception as exc:  # a bug in a backend: report it in one line, no traceback
            import traceback              # only on this path (start-up)

            where = traceback.extract_tb(exc.__traceback__)[-1]
            io.diag(f"internal error: {type(exc).__name__}: {exc} "
                    f"({os.path.basename(where.filename)}:{where.lineno}); please report this")
            if os.environ.get("VOXVM_DEBUG"):
                raise
            return int(ExitStatus.SOFTWARE)
        return status

    def trap(self) -> Trap:
        """The Trap describing the core's current trap, with names and lines where known."""
        core = self.core
        ip = core.trap_ip
        from .traps import Trap, TrapKind                 # only after a trap (start-up)

        mnemonic, function, source, line = self._place(ip, core.trap_kind != TrapKind.IP_OUTSIDE)
        from .backtrace import HEAD, frames, render_frames      # only after a trap (start-up)

        stack = frames(ip, core.call_stack(), self.program, core.read_memory, HEAD)
        return Trap(core.trap_kind, ip, mnemonic, core.trap_a, core.trap_b,
                    function=function, line=line, source=source, backtrace_lines=render_frames(stack))

    def locate(self, ip: int) -> str:
        """``at 0x<ip> (<mnemonic>) in <function>, <file>:<line>`` for a code address."""
        return location(ip, *self._place(ip, True))

    def _place(self, ip: int, has_instruction: bool):
        """``(mnemonic, function, source, line)`` of ``ip``, each None where unknown."""
        program = self.program
        mnemonic = function = line = source = None
        opcode = self.core.read_memory(ip, 1) if has_instruction else None
        if opcode:
            from .isa import BY_CODE              # the opcode table: only to name a place (start-up)

            op = BY_CODE.get(opcode[0])
            mnemonic = op.mnemonic if op else None
        if ip < len(program.image):
            function = program.function_at(ip)
            if program.symbols is not None:
                line = program.symbols.line_at(ip)
                source = program.symbols.source_path
        return mnemonic, function, source, line

    def conclude(self, trap: Trap | None) -> int:
        """After ``run()`` halted (``trap`` None) or trapped: the diagnostics that close a run
        (semantics.md §9), the trap line, the core dump of --coredump_exit; the exit status.

        The one ending of a run, for the command line (``run_to_status``, on
        every thread of the run) and the embedding API (voxvm/embed.py). Raises
        OutputError if stdout fails.
        """
        io, diagnostics, config = self.io, self.diagnostics, self.config
        status = int(ExitStatus.OK)
        if trap is not None:
            io.flush()
            diagnostics.finish(self.core.diagnostic_totals())
            for line in trap.report_lines():
                io.report(line)
            status = int(trap.exit_status)
            if config.coredump_exit:
                self.write_dump(self.dump_name(DUMP_AFTER_TRAP), 1)
        else:
            diagnostics.finish(self.core.diagnostic_totals())
            if diagnostics.at_halt(self.core.pending()):
                status = int(ExitStatus.SOFTWARE)      # --strict (semantics.md §9)
            if config.coredump_exit:
                self.write_dump(self.dump_name(DUMP_AFTER_HALT), 0)
        if self.profiling:
            self.report_profile()
        io.flush()
        return status

    def report_profile(self) -> None:
        """Print or write the --profile report (voxvm/profiler.py); a file that cannot be
        written is a warning."""
        from .profiler import Profile, output_format

        config = self.config
        data = self.profile_data
        if data is None:
            return
        profile = Profile(data, self.program, self.core.read_memory, self.backend)
        if config.profile == "-":
            for line in profile.table():
                self.io.diag(line)
            return
        kind = output_format(config.profile, config.profile_format)
        text = (profile.as_json() if kind == "json" else profile.folded() if kind == "folded"
                else "".join(line + "\n" for line in profile.table()))
        try:
            with open(config.profile, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            self.io.diag(f"warning: cannot write the profile to {config.profile}: {exc.strerror or exc}")

    def write_dump(self, path: str, reason: int) -> None:
        """Write a core dump; a failure is a warning, never a crash.

        The core streams it (``Core.write_dump``: memory of one buffer, not of the
        dump) into ``path + ".part"``, renamed to ``path`` once complete, so a
        failure midway never leaves a truncated dump under the real name."""
        partial = path + ".part"
        try:
            with open(partial, "wb") as f:
                self.core.write_dump(f, reason)
            os.replace(partial, path)
        except Exception as exc:  # unwritable directory, full disk, ...
            try:
                os.unlink(partial)
            except OSError:
                pass
            self.io.diag(f"warning: cannot write core dump {path}: "
                         f"{getattr(exc, 'strerror', None) or exc}")
            return
        if self.config.verbose:
            self.io.diag(f"core dump written to {path}")

    def _warn_about_unused_grants(self) -> None:
        """Grants that change nothing, said once per run (semantics.md §8)."""
        config = self.config
        if (config.allow_read or config.allow_write) and not config.sandbox:
            self.io.diag("warning: --allow-read/--allow-write only matter with --sandbox "
                         "(without it, file natives may use any file)")
        ignored = [flag for flag, given in (("--allow-run", config.allow_run),
                                            ("--allow-net", config.allow_net is not None)) if given]
        if ignored and config.sandbox:
            self.io.diag(f"warning: --sandbox ignores {' and '.join(ignored)} "
                         "(a sandboxed program never runs commands or uses the network)")

    def _report_sizes(self) -> None:
        c = self.config
        self.io.diag(
            f"backend {self.backend}; image {len(self.program.image)} bytes, "
            f"RAM {format_size(c.init_ram)}, data stack {c.init_stack} entries "
            f"(limit {c.stack_limit}), heap {format_size(c.init_heap)} "
            f"(max {format_size(c.max_heap)}), max recursion {c.max_recursion}")


def connect_spawning(group: RunThreads, config: VMConfig, io: HostIO) -> None:
    """Let ``group`` build spawned threads' machines: same config, the same streams as ``io``."""
    stdin, stdout, stderr = io.stdin, io.stdout, io.stderr

    def factory(program: Program, thread_id: int, argument: tuple[int, int]) -> Machine:
        return Machine(program, config, stdin, stdout, stderr, group=group, thread_id=thread_id,
                       argument=argument)

    group.factory = factory


def run_programs(programs: list[Program], config: VMConfig | None = None, stdin=None,
                 stdout=None, stderr=None) -> int:
    """Run ``programs`` at once, one OS thread each, and return the run's exit status.

    Thread ids 0, 1, ... in list order; the first runs on the calling thread.
    The status is 0 when every thread (spawned ones included) halted, else
    that of the lowest-numbered one that did not (docs/concurrency.md). The
    segments of ``config.shm`` are mapped first (a VoxError if one cannot be;
    nothing runs). Ctrl-C stops every thread, waits briefly for their output,
    and raises KeyboardInterrupt once.
    """
    config = config or VMConfig()
    if not programs:
        raise UsageError("no program to run")
    if len(programs) > MAX_LIVE_THREADS:
        raise UsageError(f"{len(programs)} programs: at most {MAX_LIVE_THREADS} threads run at once "
                         f"(docs/resource-limits.md)")
    group = RunThreads(config)
    try:
        machines = [Machine(program, config, stdin, stdout, stderr, group=group)
                    for program in programs]
        connect_spawning(group, config, machines[0].io)
        records = [group.register(machine) for machine in machines]
        if len(machines) > 1:
            group.labelled = True
            for machine in machines:
                machine.io.label = f"thread {machine.thread_id}: "
        machines = None                       # a finished thread's Core goes with its record
        previous = group.catch_sigint()
        try:
            try:
                group.start_all(records[1:])
            except VoxError:
                group.finish(records[0].id, int(VoxError.exit_status))
                group.wait_all(STOP_GRACE_SECONDS)
                raise
            group.run_here(records[0])
            group.wait_all()
        except KeyboardInterrupt:
            group.request_stop()
            group.wait_all(STOP_GRACE_SECONDS)
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        return group.status()
    finally:
        group.close()


def run_program(program: Program, config: VMConfig | None = None, stdin=None, stdout=None,
                stderr=None) -> int:
    """Run ``program`` to completion and return its exit status.

    ``stdin``/``stdout``/``stderr`` default to the process's streams; binary
    file objects (e.g. io.BytesIO) are used as they are. Threads it spawns
    run to their end too.
    """
    return run_programs([program], config, stdin, stdout, stderr)
