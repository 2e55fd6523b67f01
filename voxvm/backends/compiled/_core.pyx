# cython: language_level=3
"""The compiled execution backend: ``Core`` implements ``voxvm.backends.Core``.

Owns the Python face of the C execution core in ``csrc/`` (machine state and
decoder in ``vv_core.h``, the dispatch loop in ``vv_loop.h``, the heap in
``heap/``): building a machine from a ``Program`` and ``VMConfig``, running
the loop without the GIL, and the register/exception/memory/heap/snapshot
accessors the machine driver (voxvm/machine.py) and the natives use. Every
instance owns its whole state in C memory, its heap included (``vm.heap``);
nothing here is mutable module state, so several Cores can run at once, on
several threads.

The heap (allocator, pointer tracking, mark-sweep GC) is plain C compiled
into this extension, so the loop calls it directly. Collections and growths
are logged, when asked (``set_log`` with --gc-log or -v), after the loop
returns: it records them in C and returns early only when its buffer is full.

Native calls: ``ncall`` first runs a C native of the VM's own table
(csrc/vv_natives.h) without leaving the loop; only codes without one return
Status.NCALL for the Python host. ``set_stdout`` installs the C half of
``print`` (csrc/vv_builtins.h: numbers to stdout), which writes into a
per-VM buffer that ``run`` hands to the host at every return of the loop and
whenever the buffer reaches the room the host grants. ``install_ffi`` puts a
foreign function resolved by voxvm/host/ffi.py into the table (csrc/vv_ffi.h),
so FFI calls run in the loop too. ``install_shm`` puts thread_id and the
shared-memory natives (csrc/vv_shm.h: C11 atomics on the run's mapped
segments) there; ``end_on_return`` makes a spawned thread's first ``ret`` end
it (docs/concurrency.md).

The loop is compiled twice from one source: ``goto`` (computed goto,
threaded dispatch; GCC and Clang) and ``switch`` (portable C switch). The
default is ``goto`` where available; ``VOXVM_DISPATCH=switch`` or the
``dispatch`` argument selects the other (tests run both).
"""

import os

cdef extern from *:
    """
    #ifndef VV_BUILD_DIGEST
    #define VV_BUILD_DIGEST ""   /* built without setup.py's digest */
    #endif
    """
    const char *VV_BUILD_DIGEST

# SHA-256 of the sources this extension was built from (build_digest.py, setup.py).
BUILD_DIGEST = VV_BUILD_DIGEST.decode("ascii")

from cpython.buffer cimport PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_CheckSignals
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t, uintptr_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy

from voxvm.backends.compiled._heap_api cimport (Heap, heap_block_gc, heap_block_size, heap_find,
                                               heap_free_all, heap_free_bytes, heap_init, heap_next_block,
                                               heap_settings_changed, heap_write)

from .. import Status, gc_collection_line, gc_growth_line
from ...tags import VALID_TAGS

cdef extern from *:
    """
    /* The two instantiations of the one dispatch loop (vv_loop.h). */
    #define VV_RUN_NAME vv_run_goto
    #include "vv_loop.h"
    #undef VV_RUN_NAME
    #define VV_RUN_NAME vv_run_switch
    #define VV_LOOP_SWITCH 1
    #include "vv_loop.h"
    #undef VV_RUN_NAME
    #define VV_RUN_NAME vv_run_count
    #define VV_LOOP_COUNT 1
    #include "vv_loop.h"
    #undef VV_RUN_NAME
    #undef VV_LOOP_COUNT
    /* The debugging variants (docs/debugging.md): one instruction per call, and the profiler. */
    #define VV_RUN_NAME vv_run_step
    #define VV_LOOP_STEP 1
    #include "vv_loop.h"
    #undef VV_RUN_NAME
    #undef VV_LOOP_STEP
    #define VV_RUN_NAME vv_run_profile
    #define VV_LOOP_PROFILE 1
    #include "vv_loop.h"
    #undef VV_RUN_NAME
    #undef VV_LOOP_PROFILE
    #undef VV_LOOP_SWITCH
    #ifdef VV_HAVE_COMPUTED_GOTO
    #define VV_GOTO_AVAILABLE 1
    #else
    #define VV_GOTO_AVAILABLE 0
    #endif
    """
    int vv_run_goto(vv_vm *vm, int64_t budget) noexcept nogil
    int vv_run_switch(vv_vm *vm, int64_t budget) noexcept nogil
    int vv_run_count(vv_vm *vm, int64_t budget) noexcept nogil
    int vv_run_step(vv_vm *vm, int64_t budget) noexcept nogil
    int vv_run_profile(vv_vm *vm, int64_t budget) noexcept nogil
    int VV_GOTO_AVAILABLE

# The C natives (csrc/vv_natives.h ABI, csrc/vv_builtins.h) and the test-only ones.
cdef extern from "vv_builtins.h":
    ctypedef int (*vv_native_fn)(vv_vm *vm, void *ctx, unsigned code) noexcept nogil
    ctypedef struct vv_outbuf:
        uint8_t *data
        uint32_t len
        uint32_t room
    int vv_native_set(vv_vm *vm, unsigned code, vv_native_fn fn, void *ctx) noexcept nogil
    const void *vv_native_find(const vv_vm *vm, unsigned code) noexcept nogil
    vv_outbuf *vv_native_out(vv_vm *vm) noexcept nogil
    int vv_native_print(vv_vm *vm, void *ctx, unsigned code) noexcept nogil
    int vv_native_put(vv_vm *vm, void *ctx, unsigned code) noexcept nogil
    uint32_t VV_OUT_ROOM_MAX

# The FFI native (csrc/vv_ffi.h): one C entry per code, the resolved function inside.
cdef extern from "vv_ffi.h":
    ctypedef struct vv_ffi_entry:
        void *fn
        int32_t ret
        uint32_t argc
        uint8_t types[31]
        char what[200]
    int vv_native_ffi(vv_vm *vm, void *ctx, unsigned code) noexcept nogil
    int VV_FFI_TYPED_IN_C
    int VV_FFI_WHAT

# The line before a fatal signal ends the process (csrc/vv_crash.h).
cdef extern from "vv_crash.h":
    void vv_crash_register(vv_vm *vm) noexcept
    void vv_crash_unregister(vv_vm *vm) noexcept
    void vv_crash_set_thread(vv_vm *vm) noexcept
    void vv_crash_prepare_thread() noexcept
    int vv_crash_install() noexcept

# Thread id and shared segments (csrc/vv_shm.h): one vv_conc per VM, ctx of codes 0x32-0x39.
cdef extern from "vv_shm.h":
    ctypedef struct vv_segment:
        uint8_t *base
        uint64_t size
    ctypedef struct vv_conc:
        uint64_t thread_id
        uint64_t nseg
        vv_segment *seg
    int vv_native_shm(vv_vm *vm, void *ctx, unsigned code) noexcept nogil
    vv_conc *vv_conc_new(uint64_t thread_id, uint64_t nseg) noexcept nogil

cdef extern from "vv_testnatives.h":
    int vv_test_ffi_unsigned_add(vv_vm *vm, void *ctx, unsigned code) noexcept nogil
    int vv_test_ffi_bad_type(vv_vm *vm, void *ctx, unsigned code) noexcept nogil
    int vv_test_raise(vv_vm *vm, void *ctx, unsigned code) noexcept nogil
    int vv_test_host(vv_vm *vm, void *ctx, unsigned code) noexcept nogil
    int vv_test_trap(vv_vm *vm, void *ctx, unsigned code) noexcept nogil
    int vv_test_yield(vv_vm *vm, void *ctx, unsigned code) noexcept nogil
    int vv_test_set_zf(vv_vm *vm, void *ctx, unsigned code) noexcept nogil

# The ncall codes of print (upstream.md §8.1) and put (docs/semantics.md §7.2); the
# same numbers as voxvm/host/basic.py PRINT and PUT (tests/host/test_native_table.py).
cdef unsigned NATIVE_PRINT = 0x01
cdef unsigned NATIVE_PUT = 0x08

# run() gives the loop time slices of this length: the loop polls its clock
# every 1024 branch events and after every long instruction (vv_core.h,
# vv_poll) and returns when the slice is over, so that run() looks at signals
# (Ctrl-C) and at request_stop() at least this often, however long the
# branches take (docs/resource-limits.md "Interrupting a run").
cdef uint64_t SLICE_NS = 10 * 1000 * 1000
cdef object _STATUS = tuple(Status)
cdef uint64_t MASK64 = 0xFFFFFFFFFFFFFFFF

#: Dispatch variants compiled into this build, default first. "count" is the
#: switch loop with fusion off and an instruction counter (``Core.executed``):
#: slower, for benchmarks' ns-per-instruction figures and for tests.
DISPATCH_VARIANTS = ("goto", "switch", "count") if VV_GOTO_AVAILABLE else ("switch", "count")




cdef str _gc_line(const vv_gc_event *e):
    """One ``gc: ...`` log line, worded by voxvm.backends for both backends."""
    if e.kind == VV_GC_GROWTH:
        return gc_growth_line(e.heap_size)
    return gc_collection_line(e.number, e.freed_blocks, e.freed_bytes, e.live_blocks, e.live_bytes,
                              e.heap_size, e.ns)


def core_available():
    """True: the compiled extension was built and imports."""
    return True


# Core.write_dump: the buffer it writes through, and the sizes of voxvm.formats'
# dump entries as C constants (checked against the schema by _dump_formats).
cdef enum:
    DUMP_BUFFER = 1 << 20
    DUMP_TAGGED_VALUE = 9        # TaggedValue: value, tag
    DUMP_HEAP_BLOCK_HEAD = 17    # HeapBlockHead: address, size, kind


def _dump_formats():
    """voxvm.formats, imported when a dump is made (it imports construct: start-up),
    after checking that its dump layout is still the one write_dump packs."""
    from ... import formats
    assert (formats.DUMP_COUNT.sizeof() == formats.RETURN_ADDRESS_SIZE == 8
            and formats.TAGGED_VALUE_SIZE == DUMP_TAGGED_VALUE
            and formats.HEAP_BLOCK_HEAD_SIZE == DUMP_HEAP_BLOCK_HEAD), \
        "voxvm.formats' dump layout changed: update Core.write_dump"
    return formats


cdef uint64_t _dump_room(f, uint8_t *buf, uint64_t pos, uint64_t need) except? 1:
    """Room for ``need`` more bytes: hand the buffer to ``f`` if they would not fit."""
    if pos + need > DUMP_BUFFER:
        f.write(PyBytes_FromStringAndSize(<char *>buf, pos))
        return 0
    return pos


cdef uint64_t _dump_u64(f, uint8_t *buf, uint64_t pos, uint64_t v) except? 1:
    pos = _dump_room(f, buf, pos, 8)
    vv_put_be64(buf + pos, v)
    return pos + 8


cdef uint64_t _dump_bytes(f, uint8_t *buf, uint64_t pos, const uint8_t *src, uint64_t n) except? 1:
    cdef uint64_t chunk
    while n:
        pos = _dump_room(f, buf, pos, 1)
        chunk = DUMP_BUFFER - pos
        if chunk > n:
            chunk = n
        memcpy(buf + pos, src, chunk)
        pos += chunk
        src += chunk
        n -= chunk
    return pos


cdef inline const uint8_t *_bytes_at(bytes data):
    """The bytes of ``data`` in place (valid while ``data`` lives). Typed memoryviews would
    do too, but they bring Cython's memoryview support, whose module set-up imports
    collections.abc: about 8 M instructions of start-up (docs/performance.md "Start-up")."""
    return <const uint8_t *><const char *>data


cdef class Core:
    """The compiled backend. ``Core(program, config, dispatch=None)``; see voxvm.backends.Core."""

    def __cinit__(self, program, config, dispatch=None):
        cdef const uint8_t *image = NULL
        cdef uint64_t n
        cdef Py_ssize_t i
        cdef uint64_t *funcs = NULL
        cdef int rc
        self.ready = False
        self.profiling = False
        self.prof_final = False
        self.heap_ready = False
        self.running = False
        self.log = None
        self.stdout_sink = None
        self.diag_sink = None
        self.ffi_entries = {}
        self.conc = NULL
        self.shm_views = None
        self.program = program
        self.config = config
        if dispatch is None:
            dispatch = os.environ.get("VOXVM_DISPATCH") or DISPATCH_VARIANTS[0]
        if dispatch not in DISPATCH_VARIANTS:
            raise ValueError(f"dispatch {dispatch!r} is not one of {', '.join(DISPATCH_VARIANTS)}")
        self.dispatch = dispatch
        if dispatch == "goto":
            self.loop = vv_run_goto
        elif dispatch == "switch":
            self.loop = vv_run_switch
        else:
            self.loop = vv_run_count
        data = bytes(program.image)     # bytes, not a typed memoryview: see _bytes_at
        n = len(data)
        if n:
            image = _bytes_at(data)
        functions = [int(address) for address in program.functions]
        funcs = <uint64_t *>malloc((len(functions) or 1) * sizeof(uint64_t))
        if funcs == NULL:
            raise MemoryError("cannot allocate the function table")
        try:
            for i in range(len(functions)):
                funcs[i] = functions[i]
            rc = vv_init(&self.vm, image, n, config.init_ram, program.entry, program.data_base,
                         funcs, len(functions), config.init_stack, config.stack_limit,
                         config.max_recursion)
        finally:
            free(funcs)
        self.ready = True       # from here on __dealloc__ frees whatever vv_init allocated
        vv_crash_register(&self.vm)
        if rc != 0:
            raise MemoryError(f"cannot allocate a {n}-byte machine")
        if dispatch == "count":
            self.vm.fuse = 0    # one slot = one instruction
        rc = heap_init(&self.vm.heap, max(int(config.init_heap), 0), max(int(config.max_heap), 0))
        self.heap_ready = True
        if rc != 0:
            raise MemoryError(f"cannot allocate a {config.init_heap}-byte heap")
        self.vm.heap.gc_stress = bool(config.gc_stress)
        heap_settings_changed(&self.vm.heap)

    def __dealloc__(self):
        if self.ready:
            vv_crash_unregister(&self.vm)
            vv_free(&self.vm)       # the native table first: it points at the FFI entries
        if self.ffi_entries:
            for entry in self.ffi_entries.values():
                free(<void *><uintptr_t>entry)
        free(self.conc)            # after vv_free: the table pointed at it
        if self.heap_ready:
            heap_free_all(&self.vm.heap)

    def set_log(self, log):
        """Where ``gc: ...`` lines go (a callable taking one str), when --gc-log or -v asked for them."""
        self.log = log
        self.vm.gc_log = 1 if log is not None and (self.config.gc_log or self.config.verbose) else 0

    def set_diagnostics(self, sink):
        """Where semantics.md §9 events go: ``sink(code, ip, a, b)`` (voxvm/diagnostics.py), or None."""
        self.diag_sink = sink

    def diagnostic_totals(self):
        """``(raised, usf_missed)``: every exception raised and out-of-range usf of the run so far."""
        return self.vm.raised_total, self.vm.usf_total

    # ------------------------------------------------------------------ natives in the loop

    def set_stdout(self, sink):
        """Run ``print`` and ``put`` of numbers to stdout in C, inside the loop, when ``sink`` is not None.

        ``sink(data: bytes) -> int`` takes the program's stdout bytes that the C
        print and put buffered (in program order) and returns how many
        bytes the Core may buffer before handing them over again (at most
        64 KiB; 1 means after every print). ``run`` calls it at its start
        with ``b""`` (to learn the room), whenever the buffer reaches the room,
        and before it returns, so the bytes always reach the host before
        anything the host writes next. ``None`` takes print and put out of the
        table: every print goes to the Python host again.
        """
        cdef vv_outbuf *out
        if self.running:
            raise RuntimeError("Core.set_stdout() while the Core is running")
        self._hand_over_stdout(False)
        self.stdout_sink = None
        if (vv_native_set(&self.vm, NATIVE_PRINT, NULL, NULL) != 0
                or vv_native_set(&self.vm, NATIVE_PUT, NULL, NULL) != 0):
            raise MemoryError("cannot update the native table")
        if sink is None:
            return
        out = vv_native_out(&self.vm)
        if (out == NULL or vv_native_set(&self.vm, NATIVE_PRINT, vv_native_print, out) != 0
                or vv_native_set(&self.vm, NATIVE_PUT, vv_native_put, out) != 0):
            raise MemoryError("cannot allocate the native table")
        self.stdout_sink = sink

    cdef int _hand_over_stdout(self, bint query) except -1:
        """Give the C natives' buffered stdout to the sink and take the room it grants.

        Without ``query``, only when there is something to give (one Python
        call less per return of the loop).
        """
        cdef vv_outbuf *out
        cdef long long room
        if self.stdout_sink is None:
            return 0
        out = vv_native_out(&self.vm)
        if out == NULL:
            raise MemoryError("cannot allocate the stdout buffer")
        if out.len == 0 and not query:
            return 0
        data = PyBytes_FromStringAndSize(<char *>out.data, out.len)
        out.len = 0                     # before the call: a failing sink must not get the bytes twice
        room = self.stdout_sink(data)
        out.room = <uint32_t>(1 if room < 1 else VV_OUT_ROOM_MAX if room > VV_OUT_ROOM_MAX else room)
        return 0

    def c_natives(self):
        """The ncall codes this Core runs in C (its native table), ascending."""
        return [code for code in range(0x10000) if vv_native_find(&self.vm, code) != NULL]

    def remove_native(self, int code):
        """Take ``code`` out of the C table: its ncalls go to the Python host (tools, tests)."""
        if self.running:
            raise RuntimeError("Core.remove_native() while the Core is running")
        if not 0 <= code <= 0xFFFF:
            raise ValueError(f"ncall code {code} is outside 0..0xffff")
        if code == NATIVE_PRINT:
            self.set_stdout(None)
        elif vv_native_set(&self.vm, code, NULL, NULL) != 0:
            raise MemoryError("cannot update the native table")

    def install_ffi(self, int code, address, int argc, int ret, bytes types, bytes what=b"?"):
        """Run foreign function ``address`` for ``ncall code`` inside the loop (csrc/vv_ffi.h).

        ``ret`` -1: upstream's VMValue ABI with ``argc`` arguments; otherwise a
        typed signature: ``ret`` and ``types`` are voxvm.host.ffi.FfiType
        numbers (checked there: at most 6 integer-class and 8 f64 arguments).
        Returns False when this build cannot make the call in C (a typed
        signature off x86-64/AArch64 System V): the host's handler then runs it.
        The caller keeps the library loaded while the Core lives. ``what`` names
        the function in the line printed if the process dies inside it
        (csrc/vv_crash.h, installed here for the whole process the first time).
        """
        cdef vv_ffi_entry *e
        cdef Py_ssize_t i
        if self.running:
            raise RuntimeError("Core.install_ffi() while the Core is running")
        if not 0 <= code <= 0xFFFF or not 0 <= argc <= 31 or (ret >= 0 and len(types) != argc):
            raise ValueError(f"bad FFI entry for code {code}")
        if ret >= 0 and not VV_FFI_TYPED_IN_C:
            return False
        e = <vv_ffi_entry *>calloc(1, sizeof(vv_ffi_entry))
        if e == NULL:
            raise MemoryError("cannot allocate an FFI entry")
        e.fn = <void *><uintptr_t>address
        e.ret = ret
        e.argc = argc
        for i in range(len(types) if ret >= 0 else 0):
            e.types[i] = types[i]
        if len(what) > VV_FFI_WHAT - 1:
            # Keep the start (the symbol, the code) and the end (the library's file name),
            # each cut at a character, not inside one.
            head = what[:(VV_FFI_WHAT - 4) * 2 // 3].decode("utf-8", "ignore").encode("utf-8")
            tail = what[len(what) - (VV_FFI_WHAT - 4 - len(head)):].decode("utf-8", "ignore").encode("utf-8")
            what = head + b"..." + tail
        for i in range(len(what)):
            e.what[i] = what[i]
        e.what[len(what)] = 0           # (calloc: the rest is zero too)
        vv_crash_install()              # -1: no handler, the calls run as before
        if code == NATIVE_PRINT:
            self.set_stdout(None)
        if vv_native_set(&self.vm, code, vv_native_ffi, e) != 0:
            free(e)
            raise MemoryError("cannot update the native table")
        old = self.ffi_entries.pop(code, None)
        if old is not None:
            free(<void *><uintptr_t>old)
        self.ffi_entries[code] = <uintptr_t>e
        return True

    def install_shm(self, uint64_t thread_id, segments):
        """Run thread_id (0x32) and the shared-memory natives (0x33-0x39) in C (csrc/vv_shm.h).

        ``segments``: writable buffers (the run's ``mmap`` objects, voxvm/host/shm.py),
        segment 0 first. The Core holds a view of each while it lives, so a mapping
        cannot be closed under the loop. Error paths go to the Python handlers.
        """
        cdef vv_conc *c
        cdef Py_buffer buffer
        cdef Py_ssize_t i
        cdef unsigned code
        if self.running:
            raise RuntimeError("Core.install_shm() while the Core is running")
        views = [memoryview(s).cast("B") for s in segments]
        c = vv_conc_new(thread_id, len(views))
        if c == NULL:
            raise MemoryError("cannot allocate the shared-segment table")
        for i in range(len(views)):
            if views[i].readonly or len(views[i]) == 0:
                free(c)
                raise ValueError(f"segment {i} is not a writable, non-empty buffer")
            # The address stays valid after the release: self.shm_views keeps each
            # memoryview, and with it the mapping's export, while the Core lives.
            PyObject_GetBuffer(views[i], &buffer, PyBUF_WRITABLE)
            c.seg[i].base = <uint8_t *>buffer.buf
            c.seg[i].size = buffer.len
            PyBuffer_Release(&buffer)
        for code in range(0x32, 0x3A):
            if vv_native_set(&self.vm, code, vv_native_shm, c) != 0:
                for code in range(0x32, 0x3A):
                    vv_native_set(&self.vm, code, NULL, NULL)
                free(c)
                raise MemoryError("cannot update the native table")
        free(self.conc)
        self.conc = c
        self.shm_views = views

    def end_on_return(self):
        """Make ``ret`` on an empty call stack end the program like ``halt`` (a spawned thread's first frame)."""
        self.vm.ret_ends = 1

    def host_pointer(self, uint64_t address, int tag):
        """A ``ptr`` argument's host address: ``(pointer, None)``, or None when it is no VM address.

        A heap address must be inside a live block; a main-memory one
        (StrAddr, ds_addr) inside main memory, whose decoded instructions from
        there on are forgotten first, since the foreign function may write.
        """
        cdef uint8_t *p
        if tag == VV_TAG_ADDR:
            p = heap_find(&self.vm.heap, address, 1)
            return None if p == NULL else (<uintptr_t>p, None)
        if (tag == VV_TAG_STR or tag == VV_TAG_DS_ADDR) and address < self.vm.len:
            vv_invalidate(&self.vm, address, self.vm.len - address)
            return (<uintptr_t>(self.vm.mem + address), None)
        return None

    def _install_test_native(self, int code, str name):
        """Tests only: put one of csrc/vv_testnatives.h's natives in the C table at ``code``."""
        cdef vv_native_fn fn
        if self.running:
            raise RuntimeError("Core._install_test_native() while the Core is running")
        if not 0 <= code <= 0xFFFF:
            raise ValueError(f"ncall code {code} is outside 0..0xffff")
        if name == "ffi_unsigned_add":
            fn = vv_test_ffi_unsigned_add
        elif name == "ffi_bad_type":
            fn = vv_test_ffi_bad_type
        elif name == "raise":
            fn = vv_test_raise
        elif name == "host":
            fn = vv_test_host
        elif name == "trap":
            fn = vv_test_trap
        elif name == "yield":
            fn = vv_test_yield
        elif name == "set_zf":
            fn = vv_test_set_zf
        else:
            raise ValueError(f"no test native named {name!r}")
        if code == NATIVE_PRINT:
            self.set_stdout(None)
        if vv_native_set(&self.vm, code, fn, NULL) != 0:
            raise MemoryError("cannot update the native table")

    # ------------------------------------------------------------------ run

    def run(self, long long budget=-1):
        """Execute until halt, trap, ncall, budget exhaustion or a stop request; return a Status."""
        cdef int status
        cdef int64_t remaining = budget
        if self.running:
            raise RuntimeError("Core.run() is already running (a Core belongs to one thread at a time)")
        self.running = True
        try:
            vv_crash_set_thread(&self.vm)   # the crash line names only this thread's foreign call
            vv_crash_prepare_thread()       # (its own signal stack, once the handler is in place)
            self._hand_over_stdout(True)    # the room: the host may have buffered output since
            if self.profiling and self.vm.prof == NULL:
                self.vm.prof = vv_prof_new(&self.vm)
                if self.vm.prof == NULL:
                    raise MemoryError("cannot allocate the profile counters")
            while True:
                if vv_take_stop(&self.vm):
                    return Status.STOP
                with nogil:
                    self.vm.deadline = vh_now_ns() + SLICE_NS
                    status = self.loop(&self.vm, remaining)
                # Printed stdout first: the C print leaves a line to the host while GC
                # log lines wait (vv_builtins.h), so these bytes came before them.
                if self.stdout_sink is not None:
                    self._hand_over_stdout(False)
                if self.vm.ngc_events or self.vm.ndiags:
                    self._flush_stderr_events()
                if status != VV_STATUS_FLUSH:
                    if self.vm.prof != NULL and status <= 1:     # halt or trap: the profile ends here
                        vv_prof_settle(self.vm.prof)
                        self.prof_final = True
                    return _STATUS[status]
                # The log, a C native or a poll made the loop return; the instruction
                # is complete. Run the Python signal handlers (Ctrl-C raises here)
                # and look at the stop flag, then go on with the budget that is left.
                if remaining > 0:
                    remaining = self.vm.budget_left
                PyErr_CheckSignals()
        finally:
            self.running = False
            if self.stdout_sink is not None:
                # An exception (Ctrl-C) must not lose what was printed: HostIO keeps it.
                self._hand_over_stdout(False)

    def request_stop(self):
        """Make run() return Status.STOP within milliseconds; safe from any thread (no GIL needed)."""
        vv_request_stop(&self.vm)

    # ------------------------------------------------------------------ debugging (csrc/vv_debug.h)

    cdef _debug_mode(self):
        """One slot per instruction from now on (no fused pairs), so that steps, breakpoints
        and profile counts see every instruction; the slots decoded so far decode again."""
        if self.vm.fuse:
            self.vm.fuse = 0
            vv_invalidate(&self.vm, 0, self.vm.len)

    def step(self):
        """Execute one instruction; return Status.BUDGET when it completed (ip is the next one),
        else what run() would have returned for it (HALT, TRAP, NCALL, STOP).

        A breakpoint at ip does not stop it: stepping is how a debugger leaves a breakpoint.
        """
        cdef int status
        cdef uint64_t ip
        cdef bint had_break
        if self.running:
            raise RuntimeError("Core.step() while the Core is running")
        self._debug_mode()
        if vv_take_stop(&self.vm):
            return Status.STOP
        self.running = True
        try:
            self._hand_over_stdout(True)
            ip = self.vm.ip
            had_break = vv_break_at(&self.vm, ip)
            if had_break:
                vv_break_set(&self.vm, ip, 0)
            with nogil:
                self.vm.deadline = 0
                status = vv_run_step(&self.vm, -1)
            if had_break:
                vv_break_set(&self.vm, ip, 1)
            if self.stdout_sink is not None:
                self._hand_over_stdout(False)
            if self.vm.ngc_events or self.vm.ndiags:
                self._flush_stderr_events()
            if status == VV_STATUS_FLUSH:        # the instruction is complete (a C native yielded, ...)
                return Status.BUDGET
            return _STATUS[status]
        finally:
            self.running = False

    def set_breakpoint(self, uint64_t address, bint on=True):
        """Make run() return Status.BREAK whenever ip reaches ``address`` (or stop doing so)."""
        if self.running:
            raise RuntimeError("Core.set_breakpoint() while the Core is running")
        self._debug_mode()
        if vv_break_set(&self.vm, address, on) != 0:
            raise ValueError(f"no breakpoint can be set at 0x{address:x} (outside main memory)")

    def enable_profile(self):
        """Run the profiling loop from now on (counts and clock ticks per address and calling context)."""
        if self.running:
            raise RuntimeError("Core.enable_profile() while the Core is running")
        if self.profiling:
            return
        self._debug_mode()
        self.profiling = True       # the counters start with the next run(), not before
        self.loop = vv_run_profile

    def profile_data(self):
        """The profile so far (voxvm/profiler.py reads it), or None when not profiling:
        ``{"addresses": [(address, count, ns)], "nodes": [(entry, parent, calls, count, ns)],
        "buckets": n}`` (addresses >= n - 1 share the last bucket)."""
        cdef vv_prof *p = self.vm.prof
        cdef uint64_t i, now_ns, now_ticks
        cdef double scale
        if p == NULL:
            return None
        if not self.prof_final:
            vv_prof_settle(p)
        now_ns = vh_now_ns()
        now_ticks = p.last
        scale = (<double>(now_ns - p.ns0)) / (now_ticks - p.ticks0) if now_ticks > p.ticks0 else 1.0
        addresses = [(i, p.count[i], int(p.ticks[i] * scale)) for i in range(p.n) if p.count[i] or p.ticks[i]]
        nodes = [(p.nodes[i].entry, p.nodes[i].parent, p.nodes[i].calls, p.nodes[i].count,
                  int(p.nodes[i].ticks * scale)) for i in range(p.nnodes)]
        return {"addresses": addresses, "nodes": nodes, "buckets": p.n}

    def call_stack(self):
        """The return addresses on the call stack, oldest first."""
        cdef uint64_t i
        return [self.vm.calls[i] for i in range(self.vm.csp)]

    def registers(self):
        """``(bits, tag)`` of every register, r0 first."""
        cdef int i
        return [(self.vm.regs[i], self.vm.tags[i]) for i in range(VV_NUM_REGISTERS)]

    cdef _flush_stderr_events(self):
        """GC log lines and diagnostic events the loop recorded, in the order they happened.

        Each diagnostic remembers how many GC events came before it (gc_mark),
        so the two streams merge back into program order. Cleared first: a
        sink that raises (an unwritable stderr) must not see them twice."""
        cdef uint32_t i, nd = self.vm.ndiags, ngc = self.vm.ngc_events, gc_done = 0
        cdef vv_diag *d
        self.vm.ndiags = 0              # the arrays stay intact: the loop is not running
        self.vm.ngc_events = 0
        for i in range(nd):
            d = &self.vm.diags[i]
            if d.gc_mark > gc_done:
                self._log_gc_events(gc_done, d.gc_mark)
                gc_done = d.gc_mark
            if self.diag_sink is not None:
                self.diag_sink(d.code, d.ip, d.a, d.b)
        self._log_gc_events(gc_done, ngc)

    cdef _log_gc_events(self, uint32_t start, uint32_t end):
        cdef uint32_t i
        if self.log is None:
            return
        for i in range(start, end):
            self.log(_gc_line(&self.vm.gc_events[i]))

    # ------------------------------------------------------------------ state after run()

    @property
    def trap_kind(self):
        return self.vm.trap_kind

    @property
    def trap_ip(self):
        return self.vm.trap_ip

    @property
    def trap_a(self):
        return self.vm.trap_a

    @property
    def trap_b(self):
        return self.vm.trap_b

    @property
    def executed(self):
        """Instructions completed so far; counted only with ``dispatch="count"`` (else 0)."""
        return self.vm.executed

    @property
    def budget_left(self):
        """After ``run(budget)`` with budget > 0 returned NCALL: the branch budget left."""
        return self.vm.budget_left

    @property
    def ncall_code(self):
        return self.vm.ncall_code

    @property
    def ncall_ip(self):
        return self.vm.ncall_ip

    @property
    def ip(self):
        """Current instruction address (byte offset into main memory); settable."""
        return self.vm.ip

    @ip.setter
    def ip(self, value):
        self.vm.ip = value

    @property
    def flags(self):
        """(OF, ZF, NF, CF); assign a 4-sequence of 0/1 to change them (natives)."""
        return (self.vm.flags[0], self.vm.flags[1], self.vm.flags[2], self.vm.flags[3])

    @flags.setter
    def flags(self, values):
        values = tuple(values)
        if len(values) != 4:
            raise ValueError("flags are (OF, ZF, NF, CF)")
        for i in range(4):
            self.vm.flags[i] = 1 if values[i] else 0

    # ------------------------------------------------------------------ registers, exceptions

    def get_reg(self, int index):
        """``(bits, tag)`` of register ``index``."""
        if not 0 <= index < VV_NUM_REGISTERS:
            raise IndexError(f"register r{index} does not exist (r0..r31)")
        return (self.vm.regs[index], self.vm.tags[index])

    def set_reg(self, int index, bits, int tag):
        """Write register ``index``; ``bits`` is taken modulo 2^64 (so an int64 may be negative)."""
        if not 0 <= index < VV_NUM_REGISTERS:
            raise IndexError(f"register r{index} does not exist (r0..r31)")
        if tag not in VALID_TAGS:
            raise ValueError(f"tag {tag} is not a register tag")
        self.vm.regs[index] = <uint64_t>(int(bits) & MASK64)
        self.vm.tags[index] = tag

    def raise_exception(self, int number):
        """Count one more pending voxvm exception ``number``."""
        if not 1 <= number <= VV_EXC_COUNT:
            raise ValueError(f"{number} is not a voxvm exception number")
        vv_raise_at(&self.vm, number, self.vm.ncall_ip)   # natives raise; the ncall is the place
        if self.vm.ndiags:
            self._flush_stderr_events()

    def pending(self):
        """The pending exceptions as ``{number: count}``, only kinds with a count, by number."""
        cdef int i
        return {i + 1: self.vm.pending[i] for i in range(VV_EXC_COUNT) if self.vm.pending[i]}

    # ------------------------------------------------------------------ memory

    def memory(self):
        """A copy of main memory (image plus appended code, with dssave writes)."""
        return PyBytes_FromStringAndSize(<char *>self.vm.mem, self.vm.len)

    def read_memory(self, uint64_t address, uint64_t count):
        """``count`` bytes of main memory at ``address``, or None if outside it (no full copy)."""
        if address > self.vm.len or count > self.vm.len - address:
            return None
        return PyBytes_FromStringAndSize(<char *>self.vm.mem + address, count)

    def heap_read(self, address, count):
        """``count`` bytes inside one live heap block, or None (the caller raises HeapReadFault)."""
        cdef uint8_t *p
        if not (0 <= address <= MASK64 and 0 <= count <= MASK64):
            return None
        p = heap_find(&self.vm.heap, address, count)
        if p == NULL:
            return None
        return PyBytes_FromStringAndSize(<char *>p, count)

    def heap_write(self, address, data):
        """Write ``data`` inside one live heap block; False if it does not fit (HeapWriteFault)."""
        cdef const uint8_t *src
        cdef uint64_t n
        data = bytes(data)
        n = len(data)
        if not 0 <= address <= MASK64:
            return False
        src = _bytes_at(data)
        return heap_write(&self.vm.heap, address, src, n) == 0

    def heap_blocks(self):
        """Live heap blocks in address order: ``(address, size, kind, data)``, kind 0 GC, 1 nogc."""
        cdef Heap *h = &self.vm.heap
        cdef uint64_t address = heap_next_block(h, 0)
        cdef int64_t size
        blocks = []
        while address != 0:
            size = heap_block_size(h, address)
            blocks.append((address, size, 0 if heap_block_gc(h, address) else 1,
                           PyBytes_FromStringAndSize(<char *>h.mem + address, size)))
            address = heap_next_block(h, address)
        return blocks

    def heap_info(self):
        """Heap size and collector statistics (tests, tools, benchmarks)."""
        cdef Heap *h = &self.vm.heap
        return {
            "capacity": h.capacity, "limit": h.limit, "size": h.capacity - 8,
            "free_bytes": heap_free_bytes(h), "blocks": h.nblocks, "gc_blocks": h.gc_blocks,
            "payload_bytes": h.payload_bytes, "pointers": h.ptr_count,
            "gc_since": h.gc_since, "gc_threshold": h.gc_threshold,
            "allocs": h.stats.allocs, "failed_allocs": h.stats.failed_allocs,
            "frees": h.stats.frees, "grows": h.stats.grows, "collections": h.stats.collections,
            "gc_ns_total": h.stats.gc_ns_total, "freed_blocks_total": h.stats.freed_blocks_total,
            "peak_capacity": h.stats.peak_capacity,
        }

    # ------------------------------------------------------------------ snapshot

    def snapshot(self, int reason=0):
        """The whole machine state as a voxvm.formats.Dump."""
        cdef uint64_t i
        return _dump_formats().Dump(
            reason=reason,
            trap=self.vm.trap_kind if reason else 0,
            trap_a=self.vm.trap_a if reason else 0,
            trap_b=self.vm.trap_b if reason else 0,
            ip=self.vm.ip,
            flags=self.flags,
            registers=[(self.vm.regs[i], self.vm.tags[i]) for i in range(VV_NUM_REGISTERS)],
            data_stack=[(self.vm.stack[i].v, self.vm.stack[i].t) for i in range(self.vm.sp)],
            call_stack=[self.vm.calls[i] for i in range(self.vm.csp)],
            pending=self.pending(),
            memory=self.memory(),
            heap=self.heap_blocks(),
        )

    def write_dump(self, f, int reason=0):
        """Write ``snapshot(reason)``'s core dump to the binary file ``f`` without building it.

        The layout is voxvm.formats.DumpFile's: the fixed head is built with
        its ``DumpHead``; the sections (data stack, call stack, pending, main
        memory, heap blocks) are packed by C loops into one buffer of
        DUMP_BUFFER bytes that goes to ``f.write`` whenever it is full, so the
        cost is the buffer, whatever the sizes (tests compare the bytes with
        ``build_dump``)."""
        cdef uint64_t pos = 0, i, n, address
        cdef int64_t size
        cdef Heap *h = &self.vm.heap
        cdef uint8_t *buf = <uint8_t *>malloc(DUMP_BUFFER)
        if buf == NULL:
            raise MemoryError("cannot allocate the core dump buffer")
        try:
            f.write(_dump_formats().DumpHead.build(dict(
                reason=reason, trap=self.vm.trap_kind if reason else 0,
                trap_a=self.vm.trap_a if reason else 0, trap_b=self.vm.trap_b if reason else 0,
                ip=self.vm.ip, flags=list(self.flags),
                registers=[dict(value=self.vm.regs[i], tag=self.vm.tags[i]) for i in range(VV_NUM_REGISTERS)])))
            n = self.vm.sp
            pos = _dump_u64(f, buf, pos, n)
            for i in range(n):
                pos = _dump_room(f, buf, pos, DUMP_TAGGED_VALUE)
                vv_put_be64(buf + pos, self.vm.stack[i].v)
                buf[pos + 8] = <uint8_t>self.vm.stack[i].t
                pos += DUMP_TAGGED_VALUE
            n = self.vm.csp
            pos = _dump_u64(f, buf, pos, n)
            for i in range(n):
                pos = _dump_u64(f, buf, pos, self.vm.calls[i])
            for i in range(VV_EXC_COUNT):            # version 2: one count per kind
                pos = _dump_u64(f, buf, pos, self.vm.pending[i])
            pos = _dump_u64(f, buf, pos, self.vm.len)
            pos = _dump_bytes(f, buf, pos, self.vm.mem, self.vm.len)
            n = 0
            address = heap_next_block(h, 0)
            while address != 0:
                n += 1
                address = heap_next_block(h, address)
            pos = _dump_u64(f, buf, pos, n)
            address = heap_next_block(h, 0)
            while address != 0:
                size = heap_block_size(h, address)
                pos = _dump_room(f, buf, pos, DUMP_HEAP_BLOCK_HEAD)
                vv_put_be64(buf + pos, address)
                vv_put_be64(buf + pos + 8, <uint64_t>size)
                buf[pos + 16] = 0 if heap_block_gc(h, address) else 1
                pos += DUMP_HEAP_BLOCK_HEAD
                pos = _dump_bytes(f, buf, pos, h.mem + address, <uint64_t>size)
                address = heap_next_block(h, address)
            if pos:
                f.write(PyBytes_FromStringAndSize(<char *>buf, pos))
        finally:
            free(buf)
    # ------------------------------------------------------------------ introspection (tests, tools)

    def decoded_op(self, uint64_t address):
        """The slot op at ``address`` (0 = not decoded yet); for tests of the decoder."""
        if address > self.vm.len:
            raise IndexError(f"address {address} is outside the {self.vm.len}-byte memory")
        return self.vm.code[address].op

    def decoded_bytes(self):
        """Host bytes that decoded slots may occupy now (live slot pages), and the most
        they may (the budget): ``(live, budget)``; for tests of the memory bound."""
        cdef uint64_t page = sizeof(vv_slot) << self.vm.slot_shift
        return self.vm.slots_live * page, self.vm.slot_budget * page

    def _limit_decoded_pages(self, uint64_t pages):
        """Tests only: keep at most ``pages`` pages of decoded slots (0: the default
        budget), so that small programs exercise dropping and re-decoding."""
        self.vm.slot_budget_max = pages
        vv_slot_set_budget(&self.vm)
