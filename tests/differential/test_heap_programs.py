"""Random heap-heavy programs on both backends, under --gc-stress (the second heap fuzz target).

Owns the program-level heap fuzzer. tests/heap/test_pyheap.py and
tests/heap/test_heap_fuzz.py drive the heaps directly; this module drives them
through the instruction set, the way a program does: ``alloc``, ``allocr``,
``allocr_nogc``, ``free``, ``store``, ``load``, ``memcpy``, ``storedat``,
``ubd`` and ``dlbc``, with pointer chains kept in registers, on the data
stack (``push``/``pop``/``gsf``/``pushall``) and stored inside blocks
(linked lists built and walked in loops), garbage allocated in loops, interior
pointers, bad counts and addresses, and ``jexc`` handlers that consume the
heap faults.

Each program comes from a seed (``HeapProgramMaker(seed)``), so a failure is
replayed from the seed printed in its message:

    python tests/differential/test_heap_programs.py SEED [CONFIG]      # replay one
    python tests/differential/test_heap_programs.py --count 2000       # a longer run

Checks:

* reference backend (always): every collection frees exactly the GC blocks
  that an independent reachability computation (tests/support/heaps.py:
  ``watch_collections``) finds unreachable (roots:
  registers and stack entries tagged 8, plus every nogc block; edges: the
  recorded pointers, read from the heap bytes), never a nogc block; the
  heap's invariants hold; the program stops by ``halt`` or by a trap the
  generator can cause on purpose;
* both backends (the compiled core is required unless VOXVM_PUREPYTHON=1): after
  every slice of the same branch budget, ``voxvm.backends.reference.core.PyCore`` and
  ``voxvm.backends.compiled._core.Core`` (every dispatch loop) agree on the status, trap, ip,
  flags, registers with tags, data stack, call stack, pending exceptions,
  main memory and heap blocks (addresses, sizes, kinds, bytes).
"""

from __future__ import annotations

import os
import random
import sys

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from support.builders import build, item
from support.heaps import watch_collections
from support.machines import NO_COMPILED_CORE, PUREPYTHON, compiled, state

from voxvm.backends import Status
from voxvm.config import VMConfig
from voxvm.isa import BY_MNEMONIC, Exc, Operand, Tag
from voxvm.program import Program
from voxvm.backends.reference.core import PyCore
from voxvm.traps import TrapKind

MASK = (1 << 64) - 1

# Heap shapes: stress mode with small heaps that must grow, a tight maximum
# (allocations fail and raise HeapAllocationFault), and two runs without
# stress where the volume threshold and "nothing fits" trigger collections.
CONFIGS = [
    VMConfig(init_heap=4096, max_heap=1 << 20, gc_stress=True),
    VMConfig(init_heap=0, max_heap=64 * 1024, gc_stress=True),
    VMConfig(init_heap=1024, max_heap=8192, gc_stress=True),
    VMConfig(init_heap=64 * 1024, max_heap=1 << 20, gc_stress=True),
    VMConfig(init_heap=512, max_heap=1 << 16, gc_stress=False),
    VMConfig(init_heap=2048, max_heap=6144, gc_stress=False),
    VMConfig(init_heap=1 << 20, max_heap=1 << 30, gc_stress=False),
]

# How a program may legitimately stop besides `halt`: the generator writes a
# rare bad `load` type on purpose; nothing else may trap.
EXPECTED_TRAPS = {TrapKind.BAD_LOAD_TYPE}

HEAP_FAULTS = (Exc.HeapAllocationFault, Exc.HeapFreeFault, Exc.HeapWriteFault, Exc.HeapReadFault,
               Exc.HeapSegmFault, Exc.MainSegmFault)


# ============================================================================ programs

# registers
POINTERS = (1, 2, 3, 4, 5, 6, 7, 8)      # pointer slots: alloc results, reloaded pointers
ADDR, OFF, VAL, CNT, TYPE, SIZE = 9, 10, 11, 12, 13, 14
LOADED = (15, 16, 17)                   # results of load / dlbc
NODE, JUNK, LOOP, HANDLED, INDEX, HEAD, ZERO = 18, 19, 20, 21, 22, 23, 24

SIZES = [0, 1, 7, 8, 8, 9, 15, 16, 16, 17, 24, 24, 31, 32, 32, 32, 40, 40, 48, 64, 64, 100, 255,
         1000, 4096, 5000, 70_000, 1 << 40, MASK]
FIELD_OFFSETS = [0] * 12 + [8, 8, 8, 8, 16, 16, 24, 1, 3, 7, 9, 15, 31, 32, 100, 4096, MASK, MASK - 7]
STORE_COUNTS = [8, 8, 8, 8, 8, 8, 0, 1, 2, 3, 4, 5, 7, 9, MASK]
COPY_COUNTS = [0, 1, 7, 8, 8, 8, 9, 16, 16, 16, 24, 24, 32, 40, 64, 100, 1 << 40, MASK]
LOAD_TYPES = [1, 1, 2, 3, 4, 8, 8, 8, 9]

UTF8_TEXT = "caf\u00e9 \u2713 \U0001F600 ok".encode("utf-8") + b"\xff\xfe\xc3 end"
DATA = {
    "utf8": item(6, UTF8_TEXT + bytes(-len(UTF8_TEXT) % 8)),
    "text": item(4, "h\u00e9llo w\u00f6rld".encode("utf-16-be")),
    "words": item(6, b"".join(v.to_bytes(8, "big") for v in (1, 2, 0xDEADBEEF, MASK))),
}


class HeapProgramMaker:
    """Builds one random heap-heavy program from a seed (see the module docstring)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.code: list = []
        self.labels = 0
        self.depth = 0               # data-stack entries pushed so far (every path pushes alike)
        # pointer slots that probably hold a live block (a guess made while
        # generating: allocations can fail, and garbage is on purpose)
        self.live: set[int] = set()
        self.lists: set[int] = set()  # slots that hold the head of a list linked at offset 0

    # ---- helpers --------------------------------------------------------------------

    def label(self) -> str:
        self.labels += 1
        return f"L{self.labels}"

    def emit(self, *instructions) -> None:
        self.code.extend(instructions)

    def pointer(self) -> int:
        """A pointer slot, mostly one that holds (or held) an allocation."""
        if self.live and self.rng.random() < 0.9:
            return self.rng.choice(sorted(self.live))
        return self.rng.choice(POINTERS)

    def address_into(self, register: int) -> None:
        """register := a pointer slot plus a field offset (often 0), by pointer arithmetic.

        semantics.md §2: A+U, U+A, A-U and A*U keep the address tag.
        """
        offset, slot = self.rng.choice(FIELD_OFFSETS), self.pointer()
        way = self.rng.random()
        if way < 0.6:
            self.emit(("movr", register, slot))
            if offset:
                self.emit(("uload", OFF, offset), ("uadd", register, OFF))
        elif way < 0.75:                       # U + A
            self.emit(("uload", register, offset), ("uadd", register, slot))
        elif way < 0.9:                        # (A + (offset + 8)) - 8
            self.emit(("movr", register, slot), ("uload", OFF, (offset + 8) & MASK),
                      ("uadd", register, OFF), ("uload", OFF, 8), ("usub", register, OFF))
        else:                                  # (A * 1) + offset
            self.emit(("movr", register, slot), ("uload", OFF, 1), ("umul", register, OFF),
                      ("uload", OFF, offset), ("uadd", register, OFF))

    def count_into(self, register: int, choices) -> None:
        self.emit(("uload", register, self.rng.choice(choices)))

    def handler(self) -> None:
        """jexc on a heap fault: the handler counts it, both paths meet again."""
        exc = int(self.rng.choice(HEAP_FAULTS))
        caught, after = self.label(), self.label()
        self.emit(("jexc", exc, "@" + caught), ("jmp", "@" + after), caught + ":",
                  ("uinc", HANDLED), after + ":")

    # ---- snippets -------------------------------------------------------------------

    def s_alloc(self) -> None:
        slot = self.rng.choice(POINTERS)
        size = self.rng.choice(SIZES)
        kind = self.rng.choice(["alloc", "alloc", "allocr", "allocr", "allocr_nogc"])
        if kind == "alloc":
            self.emit(("alloc", slot, size))
        else:
            self.emit(("uload", SIZE, size), (kind, slot, SIZE))
        self.live.add(slot)

    def clear(self, slot: int) -> None:
        """slot := U(0): whatever it pointed to loses this root."""
        self.emit(("uload", slot, 0))
        self.live.discard(slot)
        self.lists.discard(slot)

    def s_free(self) -> None:
        if self.rng.random() < 0.8:
            slot = self.pointer()
            self.emit(("free", slot))
            if self.rng.random() < 0.7:        # else keep it: a dangling pointer
                self.live.discard(slot)
        else:                                  # interior pointer, null, or a double free
            self.address_into(ADDR)
            self.emit(("free", ADDR))

    def s_store(self) -> None:
        self.address_into(ADDR)
        r = self.rng.random()
        if r < 0.45:                          # a pointer: a GC edge when the count is 8
            value = self.pointer()
        elif r < 0.5:                         # U - A: a plain uint (semantics.md §2)
            value = VAL
            self.emit(("uload", VAL, self.rng.choice([0, 1 << 20, MASK])), ("usub", VAL, self.pointer()))
        else:
            value = VAL
            load = self.rng.choice(["uload", "uload", "iload", "fload"])
            # sometimes a uint that equals a block address: not a pointer, never traced
            self.emit((load, VAL, self.rng.choice([0, 1, 0x1122334455667788, MASK, 42, 16, 24, 32,
                                                   48, 64, 80])))
        self.count_into(CNT, STORE_COUNTS)
        self.emit(("store", ADDR, value, CNT))

    def s_link(self) -> None:
        """Store one pointer slot into another's first words: an edge at offset 0 or 8."""
        target, holder = self.pointer(), self.pointer()
        self.emit(("movr", ADDR, holder))
        if self.rng.random() < 0.4:
            self.emit(("uload", OFF, 8), ("uadd", ADDR, OFF))
        self.emit(("uload", CNT, 8), ("store", ADDR, target, CNT))
        if self.rng.random() < 0.3 and target != holder:   # only the heap keeps it alive now
            self.clear(target)

    def s_load(self) -> None:
        self.address_into(ADDR)
        kind = self.rng.choice(LOAD_TYPES) if self.rng.random() > 0.01 else self.rng.choice([0, 5, 7])
        destination = self.rng.choice(POINTERS) if kind == 8 and self.rng.random() < 0.7 \
            else self.rng.choice(LOADED)
        self.emit(("uload", TYPE, kind))
        self.count_into(CNT, STORE_COUNTS)
        self.emit(("load", TYPE, destination, ADDR, CNT))
        self.live.discard(destination)         # probably not a block start

    def s_memcpy(self) -> None:
        self.address_into(ADDR)
        source = self.pointer()
        self.count_into(CNT, COPY_COUNTS)
        if self.rng.random() < 0.5:            # into a field of a block, or out of one
            self.emit(("memcpy", ADDR, source, CNT))
        else:
            self.emit(("memcpy", source, ADDR, CNT))

    def s_storedat(self) -> None:
        name = self.rng.choice(sorted(DATA))
        self.emit(("dslea", OFF, "%" + name, 9 + self.rng.choice([0, 0, 1, 8, 16])))
        if self.rng.random() < 0.1:            # a source past the end of memory
            self.emit(("uload", OFF, self.rng.choice([1 << 20, MASK])))
        self.count_into(CNT, [0, 1, 8, 8, 8, 16, 16, 24, 31, 40, 1000, MASK - 50])
        self.emit(("storedat", self.pointer(), OFF, CNT))

    def s_ubd(self) -> None:
        self.count_into(CNT, [0, 1, 4, 4, 8, 8, 16, 24, 31, MASK])
        self.emit(("ubd", self.pointer(), CNT, self.pointer()))

    def s_dlbc(self) -> None:
        self.count_into(CNT, [0, 1, 8, 16, 1 << 40, MASK])
        self.emit(("dlbc", self.rng.choice(LOADED), self.pointer(), CNT))

    def s_push(self) -> None:
        slot = self.pointer()
        self.emit(("push", slot))
        self.depth += 1
        if self.rng.random() < 0.4:            # only the stack keeps it now
            self.clear(slot)

    def s_pop(self) -> None:
        if self.depth:
            slot = self.rng.choice(POINTERS)
            self.emit(("pop", slot))
            self.live.add(slot)
            self.depth -= 1

    def s_gsf(self) -> None:
        if self.depth:
            slot = self.rng.choice(POINTERS)
            self.emit(("uload", INDEX, self.rng.randrange(self.depth)), ("gsf", slot, INDEX))
            self.live.add(slot)

    def s_pushall(self) -> None:
        """pushall ... popall: 31 stack roots; r0 is not restored (semantics.md §3.2)."""
        live = set(self.live)
        self.emit(("pushall",))
        for slot in POINTERS:
            if self.rng.random() < 0.5:
                self.clear(slot)
        self.s_alloc()
        self.s_garbage()
        self.emit(("popall",))
        self.live = live

    def s_drop(self) -> None:
        slot = self.rng.choice(POINTERS)
        if self.rng.random() < 0.6:
            self.clear(slot)
        else:
            source = self.pointer()
            self.emit(("movr", slot, source))
            if source in self.live:
                self.live.add(slot)
            else:
                self.live.discard(slot)

    def s_garbage(self) -> None:
        """A loop that allocates blocks nobody keeps."""
        top = self.label()
        self.emit(("uload", LOOP, self.rng.randrange(1, 12)), top + ":",
                  ("alloc", JUNK, self.rng.choice([0, 8, 16, 24, 64, 200])),
                  ("udec", LOOP), ("jnz", "@" + top))

    def s_list(self) -> None:
        """Build a linked list: each node stores the previous head at offset 0 (or 8)."""
        head = self.pointer()
        link = self.rng.choice([0, 0, 8])
        top = self.label()
        allocate = ("alloc", NODE, self.rng.choice([8, 16, 24])) if self.rng.random() < 0.7 \
            else ("allocr_nogc", NODE, SIZE)
        self.emit(("uload", SIZE, 16), ("uload", CNT, 8), ("uload", LOOP, self.rng.randrange(1, 40)),
                  top + ":", allocate, ("movr", ADDR, NODE))
        if link:
            self.emit(("uload", OFF, link), ("uadd", ADDR, OFF))
        self.emit(("store", ADDR, head, CNT))
        if self.rng.random() < 0.5:
            self.emit(("alloc", JUNK, 32))     # garbage between the nodes
        self.emit(("movr", head, NODE), ("udec", LOOP), ("jnz", "@" + top))
        self.emit(("uload", NODE, 0))
        self.live.add(head)
        if link == 0:
            self.lists.add(head)
        else:
            self.lists.discard(head)

    def s_walk(self) -> None:
        """Follow the offset-0 pointers of a list until the null pointer (or a fault)."""
        top, out = self.label(), self.label()
        start = self.rng.choice(sorted(self.lists)) if self.lists and self.rng.random() < 0.8 \
            else self.pointer()
        self.emit(("movr", HEAD, start), ("uload", TYPE, 8), ("uload", CNT, 8),
                  ("uload", ZERO, 0), ("uload", LOOP, self.rng.randrange(1, 20)), top + ":",
                  ("load", TYPE, HEAD, HEAD, CNT), ("ucmp", HEAD, ZERO), ("jz", "@" + out),
                  ("udec", LOOP), ("jnz", "@" + top), out + ":")

    SNIPPETS = {
        "s_alloc": 12, "s_free": 4, "s_store": 10, "s_link": 8, "s_load": 8, "s_memcpy": 5,
        "s_storedat": 3, "s_ubd": 2, "s_dlbc": 1, "s_push": 4, "s_pop": 3, "s_gsf": 2,
        "s_pushall": 1, "s_drop": 4, "s_garbage": 3, "s_list": 3, "s_walk": 3, "handler": 8,
    }

    def make(self, length: int | None = None) -> Program:
        names = list(self.SNIPPETS)
        weights = [self.SNIPPETS[n] for n in names]
        for _ in range(length if length is not None else self.rng.randrange(10, 150)):
            getattr(self, self.rng.choices(names, weights)[0])()
        for exc in HEAP_FAULTS:                # consume what is left, some of it
            if self.rng.random() < 0.3:
                self.handler()
        self.emit(("halt",))
        return build(*self.code, data=DATA)

    def listing(self) -> str:
        """The program in vvs-like text (labels, registers as rN), for failure messages."""
        lines = []
        for element in self.code:
            if isinstance(element, str):
                lines.append(element)
                continue
            mnemonic, *operands = element
            kinds = BY_MNEMONIC[mnemonic].operands
            lines.append("    " + " ".join([mnemonic] + [
                f"r{value}" if kind is Operand.REG else str(value)
                for kind, value in zip(kinds, operands)]))
        return "\n".join(lines)


# ============================================================================ running

def reference_core(program: Program, config: VMConfig) -> PyCore:
    """PyCore whose every collection is checked against an independent reachability pass."""
    core = PyCore(program, config)
    checked = watch_collections(core.heap)
    core.collections_checked = lambda: checked[0]
    return core


def run_slices(core, budget: int, max_slices: int = 2000) -> list[dict]:
    """Run in slices of ``budget`` branch events until halt or trap; the state after each."""
    states = []
    for _ in range(max_slices):
        status = core.run(budget)
        states.append(state(core, status))
        if status in (Status.HALT, Status.TRAP):
            return states
        assert status == Status.BUDGET, f"unexpected status {status}"
    raise AssertionError(f"no halt after {max_slices} slices of {budget} branch events")


def describe(seed: int, config_index: int, maker: HeapProgramMaker, problem: str) -> str:
    """A failure message: the seed and how to replay it first, then the problem and the program."""
    return (f"heap program seed={seed} config={config_index} ({CONFIGS[config_index]})\n"
            f"replay: python tests/differential/test_heap_programs.py {seed} {config_index} --listing\n"
            f"{problem}\nprogram:\n{maker.listing()}")


def _short(value, limit: int = 600) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def check_reference(seed: int, config_index: int, with_core: bool = False):
    """Run on PyCore with every collection checked; the states after each slice (and the core)."""
    maker = HeapProgramMaker(seed)
    program = maker.make()
    core = reference_core(program, CONFIGS[config_index])
    try:
        states = run_slices(core, budget=40)
        core.heap.check()
        last = states[-1]
        if last["status"] == Status.TRAP:
            assert last["trap"][0] in EXPECTED_TRAPS, f"unexpected trap {TrapKind(last['trap'][0]).name}"
        for _, tag in last["registers"] + last["data_stack"]:
            assert tag in {int(t) for t in Tag}
    except Exception as error:               # any failure names the seed and shows the program
        raise AssertionError(describe(seed, config_index, maker, repr(error))) from error
    return (states, core) if with_core else states


def check_both(seed: int, config_index: int, budget: int, max_slices: int = 20_000) -> None:
    """PyCore and every compiled dispatch loop agree after every slice (run side by side)."""
    core_module = compiled()        # skips only in a pure-Python install
    maker = HeapProgramMaker(seed)
    program = maker.make()
    config = CONFIGS[config_index]
    reference_side = reference_core(program, config)
    cores = [(dispatch, core_module.Core(program, config, dispatch=dispatch))
             for dispatch in core_module.DISPATCH_VARIANTS]
    for number in range(max_slices):
        status = reference_side.run(budget)
        reference = state(reference_side, status)
        for dispatch, core in cores:
            got = state(core, core.run(budget))
            if got != reference:
                diff = "\n".join(f"  {key}: compiled {_short(got.get(key))}\n"
                                 f"  {' ' * len(key)}  reference {_short(reference.get(key))}"
                                 for key in sorted(set(got) | set(reference))
                                 if got.get(key) != reference.get(key))
                problem = f"dispatch={dispatch}, budget={budget}, slice {number} differs:\n{diff}"
                raise AssertionError(describe(seed, config_index, maker, problem))
        if status in (Status.HALT, Status.TRAP):
            return
    raise AssertionError(describe(seed, config_index, maker, f"no halt after {max_slices} slices"))


# ============================================================================ tests

# A fixed CI budget (derandomized: the same examples every run); raise it
# with VOXVM_FUZZ_EXAMPLES for a longer local run.
EXAMPLES = int(os.environ.get("VOXVM_FUZZ_EXAMPLES", "0"))


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=EXAMPLES or examples, deadline=None, derandomize=True,
                    database=None, suppress_health_check=[HealthCheck.too_slow])



SEEDS = st.integers(0, 2**32 - 1)


@fuzz_settings(100)
@given(seed=SEEDS, config_index=st.integers(0, len(CONFIGS) - 1))
def test_heap_programs_on_the_reference_backend(seed, config_index):
    note(f"seed={seed} config={config_index}")
    check_reference(seed, config_index)


@fuzz_settings(250)
@given(seed=SEEDS, config_index=st.integers(0, len(CONFIGS) - 1),
       budget=st.sampled_from([3, 25, 200]))
def test_heap_programs_agree_on_both_backends(seed, config_index, budget):
    note(f"seed={seed} config={config_index} budget={budget}")
    check_both(seed, config_index, budget)


def test_the_programs_exercise_the_heap():
    """The generator is worth its time: collections, faults, handlers, edges and failures occur."""
    collections = 0
    pending, handled, halted, blocks, failed_allocs = set(), 0, 0, 0, 0
    for seed in range(30):
        for config_index in (0, 2):
            states, core = check_reference(seed, config_index, with_core=True)
            collections += core.collections_checked()
            last = states[-1]
            pending |= set(last["pending"])
            handled += last["registers"][HANDLED][0]
            halted += last["status"] == Status.HALT
            blocks += len(last["heap"])
    assert collections > 1000
    assert {int(e) for e in HEAP_FAULTS} <= pending
    assert handled > 60 and halted > 50 and blocks > 300


def test_gc_keeps_a_list_reachable_only_through_the_heap_and_the_stack():
    """A hand-written program: the list head lives only on the stack; stress collections run."""
    program = build(
        ("uload", CNT, 8), ("uload", LOOP, 20),
        "top:", ("alloc", NODE, 16), ("store", NODE, 1, CNT), ("movr", 1, NODE),
        ("alloc", JUNK, 40), ("udec", LOOP), ("jnz", "@top"),
        ("push", 1), ("uload", 1, 0), ("uload", NODE, 0),
        ("uload", LOOP, 10), "junk:", ("alloc", JUNK, 24), ("udec", LOOP), ("jnz", "@junk"),
        ("pop", 2), ("uload", TYPE, 8), ("uload", LOOP, 20), ("uload", VAL, 0),
        "walk:", ("load", TYPE, 2, 2, CNT), ("uinc", VAL), ("udec", LOOP), ("jnz", "@walk"),
        ("halt",))
    core = reference_core(program, VMConfig(init_heap=1024, max_heap=1 << 20, gc_stress=True))
    states = run_slices(core, budget=-1)
    last = states[-1]
    assert last["status"] == Status.HALT and last["pending"] == {}
    assert last["registers"][2] == (0, int(Tag.ADDR))   # walked 20 nodes to the null pointer
    assert last["registers"][VAL] == (20, int(Tag.U64))
    # the 20 nodes survive, and the last two 24-byte junk blocks (the collection before the
    # last allocation still saw the previous one in JUNK); every other junk block was collected
    assert sorted(size for _, size, _, _ in last["heap"]) == [16] * 20 + [24, 24]
    assert core.heap.collections == 20 + 20 + 10


def _main(argv: list[str]) -> int:
    """Replay one seed (``SEED [CONFIG]``) or run ``--count N`` random seeds on both backends."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seed", nargs="?", type=int)
    parser.add_argument("config", nargs="?", type=int)
    parser.add_argument("--count", type=int, default=0, help="random seeds to try")
    parser.add_argument("--budget", type=int, default=25)
    parser.add_argument("--listing", action="store_true", help="print the program")
    args = parser.parse_args(argv)
    cases = []
    if args.seed is not None:
        configs = [args.config] if args.config is not None else range(len(CONFIGS))
        cases = [(args.seed, c) for c in configs]
    rng = random.Random()
    cases += [(rng.getrandbits(32), rng.randrange(len(CONFIGS))) for _ in range(args.count)]
    both = not PUREPYTHON
    if not both:
        print(f"reference backend only: {NO_COMPILED_CORE}")
    for seed, config_index in cases:
        if args.listing:
            maker = HeapProgramMaker(seed)
            maker.make()
            print(describe(seed, config_index, maker, ""))
        check_reference(seed, config_index)
        if both:
            check_both(seed, config_index, args.budget)
    print(f"{len(cases)} programs ok")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
