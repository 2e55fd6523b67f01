"""The threads of one run: ids, spawn, join, the shared segments and stopping them all.

Owns ``RunThreads``: every program of a run (the command-line programs, ids
0, 1, ... in order, then every spawned thread, numbered on) with its OS
thread, final status and final r0; the join bookkeeping (each thread joined
at most once, never by itself, never in a cycle that would deadlock); the
run's shared segments (voxvm/host/shm.py) and the locks every program's
HostIO shares (one for output, so lines never interleave, one for stdin);
the stop that Ctrl-C sends to every Core; the embedding API's limits on a
run (voxvm/embed.py: each thread's ``max_steps``, the ``timeout`` that stops
them all, a Python native's own exception on a spawned thread); and the exit
status of the run (docs/concurrency.md). It knows machines only through what voxvm/machine.py
gives it: a factory for spawned machines and each machine's ``core``,
``program`` and ``run_to_status``.
"""

from __future__ import annotations

import _signal as signal   # not the signal module: it builds enums (start-up, docs/performance.md)
import _thread
import time

from .errors import VoxError
from .tags import Tag

TYPE_CHECKING = False     # typing costs start-up time; annotations are strings here
if TYPE_CHECKING:
    import threading
    from typing import Callable

    from .config import VMConfig
    from .host.shm import Segment

# Spawned threads alive at once (docs/resource-limits.md): each holds a Core with its own
# heap and a copy of main memory, so a fork bomb must stop at a bound.
MAX_LIVE_THREADS = 256
# After Ctrl-C, how long the run waits for its other threads to stop and flush their output.
STOP_GRACE_SECONDS = 2.0


class StopFlag:
    """Set once when the run stops; ``wait(seconds)`` sleeps until then or until it is set.

    What the run needs of ``threading.Event``, on a ``_thread`` lock: a run of one
    program never imports ``threading`` (start-up, docs/performance.md "Start-up").
    The lock is held while the flag is clear; every waiter passes it on when it is set.
    """

    __slots__ = ("_set", "_clear")

    def __init__(self) -> None:
        self._set = False
        self._clear = _thread.allocate_lock()
        self._clear.acquire()

    def set(self) -> None:
        if not self._set:
            self._set = True
            self._clear.release()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        """Sleep at most ``timeout`` seconds, less if the flag is set; whether it is set."""
        if self._clear.acquire(timeout=max(timeout, 0.0)):
            self._clear.release()              # wake the next waiter too
        return self._set


class ThreadRecord:
    """One program of the run (a plain class: dataclasses cost start-up time)."""

    __slots__ = ("id", "machine", "thread", "done", "status", "result", "joined_by", "waiting_for")

    def __init__(self, thread_id: int, machine) -> None:
        self.id = thread_id
        self.machine = machine                 # released when the thread ends
        self.thread: threading.Thread | None = None   # None: runs on the caller's thread
        self.done = False
        self.status: int | None = None         # exit status: 0 halt, 70 trap, 74 output, 130 stopped
        self.result = (0, int(Tag.U64))        # its final r0
        self.joined_by: int | None = None
        self.waiting_for: int | None = None    # the thread it is joining now


class RunThreads:
    """Every thread of one run (module docstring). ``factory(program, thread_id, argument)``
    builds a spawned thread's machine; ``argument`` is r1's ``(bits, tag)``."""

    def __init__(self, config: VMConfig, segments: list[Segment] | None = None) -> None:
        self.config = config
        if segments is None:
            segments = []
            if config.shm:                     # the module only when a run has segments (start-up)
                from .host.shm import open_segments

                segments = open_segments(config.shm)
        self.segments = segments
        self.factory: Callable | None = None
        self.ffi = None                        # the FFI runtime, loaded once per run
        self.records: dict[int, ThreadRecord] = {}
        self.next_id = 0
        self._lock = _thread.RLock()           # reentrant: the SIGINT handler takes it
        # The condition on _lock that joins and wait_all sleep on: built by the first
        # wait, so that a run that never waits never imports threading (start-up).
        self._condition: threading.Condition | None = None
        self.stop_event = StopFlag()
        self.output_lock = _thread.RLock()
        self.input_lock = _thread.allocate_lock()
        self.labelled = False                  # the VM's lines name the thread (several programs)
        # The embedding API's run limits (voxvm/embed.py): every spawned thread's bound in
        # branch events (-1: none), the Python natives every thread sees, and why a limit
        # ended the run (None: none did).
        self.budget = -1
        self.python_natives: dict = {}
        self.limit_reason: str | None = None
        self.limit_thread: int | None = None   # whose max_steps ran out
        self.native_error: BaseException | None = None   # a Python native's own exception, to re-raise

    # -------------------------------------------------------------- membership

    def _wait(self, timeout: float | None = None) -> None:
        """Sleep on the run's condition (the caller holds ``_lock``) until notified."""
        if self._condition is None:
            import threading

            self._condition = threading.Condition(self._lock)
        self._condition.wait(timeout)

    def _notify_all(self) -> None:
        if self._condition is not None:        # nobody ever waited otherwise
            self._condition.notify_all()

    def reserve_id(self) -> int:
        with self._lock:
            thread_id = self.next_id
            self.next_id += 1
            return thread_id

    def register(self, machine) -> ThreadRecord:
        """Record a machine under its ``thread_id`` (before it runs)."""
        with self._lock:
            record = ThreadRecord(machine.thread_id, machine)
            self.records[record.id] = record
            return record

    def start(self, record: ThreadRecord) -> None:
        """Run ``record``'s machine on a new OS thread (a daemon: Ctrl-C never waits forever)."""
        import threading

        thread = threading.Thread(target=self._thread_main, args=(record,),
                                  name=f"voxvm-thread-{record.id}", daemon=True)
        record.thread = thread
        thread.start()

    def start_all(self, records: list[ThreadRecord]) -> None:
        """Start ``records`` on new threads; if the OS refuses one (a limit on threads or
        processes), stop those started, mark the rest ended and raise a VoxError."""
        for index, record in enumerate(records):
            try:
                self.start(record)
            except RuntimeError as exc:       # threading: "can't start new thread"
                self.request_stop()
                for unstarted in records[index:]:
                    self._finish(unstarted, int(VoxError.exit_status))
                raise VoxError(f"cannot start thread {record.id} of the run: {exc} (the OS limits "
                               f"threads or processes: ulimit -u)") from None

    def run_here(self, record: ThreadRecord) -> None:
        """Run ``record``'s machine on the calling thread; KeyboardInterrupt propagates."""
        status = int(VoxError.exit_status)
        try:
            status = record.machine.run_to_status(interruptible=True)
        except KeyboardInterrupt:
            status = 130
            raise
        finally:
            self._finish(record, status)

    def finish(self, thread_id: int, status: int) -> None:
        """Record the end of a thread its caller ran itself (the embedding API's thread 0);
        a thread already ended keeps its status."""
        record = self.records[thread_id]
        if not record.done:
            self._finish(record, status)

    def _thread_main(self, record: ThreadRecord) -> None:
        status = int(VoxError.exit_status)
        try:
            status = record.machine.run_to_status(interruptible=False)
        except BaseException as error:
            if not getattr(error, "raised_by_native", False):
                raise
            self.stop_for_error(error)         # the embedding API raises it (voxvm/embed.py)
        finally:
            self._finish(record, status)

    def _finish(self, record: ThreadRecord, status: int) -> None:
        machine = record.machine
        try:
            result = machine.core.get_reg(0) if machine is not None else (0, int(Tag.U64))
        except Exception:                      # a Core that never came up
            result = (0, int(Tag.U64))
        with self._lock:
            record.result = (int(result[0]), int(result[1]))
            record.status = status
            record.done = True
            record.machine = None              # its Core (heap, memory) can go now
            self._notify_all()

    def wait_all(self, timeout: float | None = None) -> bool:
        """Wait until every thread (spawned ones included) has ended; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while any(not r.done for r in self.records.values()):
                if deadline is None:
                    self._wait()
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._wait(left)
        return True

    def status(self) -> int:
        """The run's exit status: 0 if every thread halted, else the lowest id's failure."""
        with self._lock:
            for thread_id in sorted(self.records):
                status = self.records[thread_id].status
                if status:
                    return status
        return 0

    def close(self) -> None:
        """Unmap the segments (a file-backed one keeps its bytes in the file)."""
        for segment in self.segments:
            segment.close()

    # -------------------------------------------------------------- stopping

    def request_stop(self) -> None:
        """Stop every program soon: each Core's stop flag, and wake sleeping and joining natives."""
        self.stop_event.set()
        with self._lock:
            for record in self.records.values():
                machine = record.machine
                if machine is not None and not record.done:
                    machine.core.request_stop()
            self._notify_all()

    def stop_for_limit(self, reason: str, thread_id: int | None = None) -> None:
        """A run limit of the embedding API ran out (``reason``: "timeout", or "max_steps" of
        thread ``thread_id``; the first one is kept): stop every thread as Ctrl-C does, as the
        end of the run, not an interruption of the process."""
        with self._lock:
            if self.limit_reason is not None or all(r.done for r in self.records.values()):
                return          # a limit came first, or the run ended just before the timer fired
            self.limit_reason, self.limit_thread = reason, thread_id
        self.request_stop()

    def stop_for_error(self, error: BaseException) -> None:
        """A Python native raised ``error`` on a spawned thread: stop the run, and let the
        embedding API raise it (the first one) once every thread has ended."""
        with self._lock:
            if self.native_error is None:
                self.native_error = error
        self.request_stop()

    def catch_sigint(self):
        """On the main thread, while SIGINT has Python's default handler: route Ctrl-C to
        ``request_stop`` and raise KeyboardInterrupt (which also interrupts a blocking native).
        Returns the handler to restore, or None when nothing was installed."""
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return None

        def interrupt(signum, frame):
            self.request_stop()      # loops running without the GIL stop at their next poll
            raise KeyboardInterrupt

        try:
            return signal.signal(signal.SIGINT, interrupt)
        except ValueError:           # not the main thread: Python delivers signals there only
            return None

    # -------------------------------------------------------------- spawn and join

    def spawn(self, parent_id: int, core, index: int, bits: int, tag: int) -> int:
        """Start function ``index`` of the parent's program on a new thread; its id."""
        from .host.registry import NativeFailure   # spawn and join only (start-up)

        with self._lock:
            parent = self.records.get(parent_id)
            machine = parent.machine if parent is not None else None
            if machine is None or self.factory is None:
                raise NativeFailure("spawn: this machine cannot start threads")
            program = machine.program
            if index >= len(program.functions):
                raise NativeFailure(f"spawn: function index {index} does not exist (the program has "
                                    f"{len(program.functions)} function{'s' if len(program.functions) != 1 else ''})")
            if self.stop_event.is_set():
                raise NativeFailure("spawn: the run is stopping")
            live = sum(1 for r in self.records.values() if not r.done)
            if live >= MAX_LIVE_THREADS:
                raise NativeFailure(f"spawn: {live} threads are running, the most one run may have "
                                    f"(docs/resource-limits.md)")
            thread_id = self.next_id
            self.next_id += 1
        child_program = program._replace(image=core.memory(), entry=program.functions[index])
        try:
            child = self.factory(child_program, thread_id, (bits, tag))
        except VoxError as error:
            self._give_back(thread_id)
            raise NativeFailure(f"spawn: {error}") from None
        record = self.register(child)
        if self.stop_event.is_set():        # the run began stopping while the child was built:
            child.core.request_stop()       # request_stop() did not see it (it stops at its first poll)
        try:
            self.start(record)
        except RuntimeError as exc:         # the host refuses another thread
            with self._lock:
                del self.records[thread_id]
            self._give_back(thread_id)
            raise NativeFailure(f"spawn: cannot start a thread: {exc}") from None
        return thread_id

    def _give_back(self, thread_id: int) -> None:
        with self._lock:
            if self.next_id == thread_id + 1:
                self.next_id = thread_id

    def join(self, caller: int, target: int) -> tuple[int, int, str | None]:
        """Wait for thread ``target``: ``(bits, tag, failure)`` of its final r0.

        ``failure`` is None when it halted, else why not (the caller raises NativeFault
        after setting r0). Unknown ids, itself, a second join and a join that would
        close a cycle of waiting threads raise NativeFailure before waiting.
        """
        from .host.registry import NativeFailure

        with self._lock:
            record = self.records.get(target)
            if record is None:
                raise NativeFailure(f"join: no thread {target} (this run has threads 0..{self.next_id - 1})")
            if target == caller:
                raise NativeFailure(f"join: thread {caller} cannot join itself")
            if record.joined_by is not None:
                raise NativeFailure(f"join: thread {target} was already joined (by thread {record.joined_by})")
            waiting = target
            while waiting is not None:
                if waiting == caller:
                    raise NativeFailure(f"join: thread {target} is waiting for thread {caller}; "
                                        f"joining it would deadlock")
                waiting = self.records[waiting].waiting_for if waiting in self.records else None
            record.joined_by = caller
            me = self.records.get(caller)
            if me is not None:
                me.waiting_for = target
            try:
                while not record.done or self.stop_event.is_set():
                    if self.stop_event.is_set():
                        # The run is stopping (Ctrl-C): so does this thread, whether or not
                        # the other one ended first, and without a message of its own.
                        raise KeyboardInterrupt
                    self._wait()
            finally:
                if me is not None:
                    me.waiting_for = None
            bits, tag = record.result
            failure = None if record.status == 0 else (
                f"thread {target} did not halt (exit status {record.status}); r0 is its last r0")
            return bits, tag, failure
