"""The slot operations of the compiled core's decoder: one numbering, declared here.

Owns the ops a decoded slot (``vv_slot.op`` in csrc/vv_core.h) can hold. The
decoder turns every instruction into a slot whose op is a *slot op*, not an
opcode byte: each of the 95 opcodes has one (``VV_SOP_<MNEMONIC>``), and the
decoder's internal ops below (fused pairs, the not-yet-decoded and trapping
slots) have their own. Slot ops are numbered densely in their own space,
internal ops first, then the opcodes in code order, so an internal op can
never take a number an opcode needs: adding an opcode to voxvm/isa.py only
shifts slot numbers, which nothing outside the C core ever sees.

tools/gen_isa.py writes the numbering into csrc/vv_tables.h (``VV_SOP_*``,
``VV_FOREACH_SLOT_OP``, ``VV_SLOT_OP_COUNT``) with static asserts that it
fits the slot's byte and that X_DECODE is 0. Imports only voxvm.isa.
"""

from __future__ import annotations

from typing import NamedTuple

from voxvm import isa


class SlotOp(NamedTuple):
    """One internal slot op: its C name (after ``VV_SOP_``) and what the slot means."""

    name: str
    doc: str


# Order matters only for X_DECODE, which must come first (number 0): fresh
# slots are zero-filled and a zero slot must mean "decode me".
INTERNAL: tuple[SlotOp, ...] = (
    SlotOp("X_DECODE", "not decoded yet (zero: fresh slots are zero-filled)"),
    SlotOp("X_TRAP", "a fetch here traps: a = trap kind, imm = argument a, x = argument b"),
    SlotOp("X_OUTSIDE", "the sentinel slot at address len: a fetch there traps IP_OUTSIDE"),
    SlotOp("X_BREAK", "a breakpoint (csrc/vv_debug.h): the loop returns BREAK before the instruction here"),
    SlotOp("X_UCJ", "ucmp a b + jcc imm (both uint64 fast path); d = condition mask"),
    SlotOp("X_ICJ", "icmp a b + jcc imm (both int64 fast path); d = condition mask"),
    SlotOp("X_FCJ", "fcmp a b + jcc imm (both float64 fast path); d = condition mask"),
    SlotOp("X_INC_CJ", "uinc c + compare a b + jcc imm; d = condition mask"),
    SlotOp("X_INC_SELF_CJ", "X_INC_CJ comparing the register it counts (a == c)"),
    SlotOp("X_DEC_JNZ", "udec a + jnz imm"),
    SlotOp("X_MOV_ADD", "movr a b + uadd/iadd a c: R[a] = R[b] + R[c]"),
    SlotOp("X_MOV_MUL", "movr a b + umul/imul a c: R[a] = R[b] * R[c]"),
    SlotOp("X_MOV_SUB", "movr a b + isub a c (no flags)"),
    SlotOp("X_MOV_USUB", "movr a b + usub a c (sets ZF)"),
    SlotOp("X_MOV_FADD", "movr a b + fadd a c (float64 fast path)"),
    SlotOp("X_MOV_FMUL", "movr a b + fmul a c (float64 fast path)"),
    SlotOp("X_MOV_FSUB", "movr a b + fsub a c (float64 fast path)"),
    SlotOp("X_ALLOC_STORE", "alloc a imm + store a b c (b, c != a; 8 <= imm <= VV_FUSED_ALLOC_MAX = 64; x = tile granules)"),
    SlotOp("X_ADD_LOAD", "uadd a b + load c d a x: a field's address, then its word (x = the count register)"),
    SlotOp("X_ADD_STORE", "uadd a b + store a c d: a field's address, then a store there"),
    SlotOp("X_MOV_ADD_LOAD", "movr a b + uadd a c + load d v a k (x = v | k << 8)"),
    SlotOp("X_MOV_ADD_STORE", "movr a b + uadd a c + store a d x"),
    SlotOp("X_ADD_CJ", "uadd a b + ucmp a c + jcc imm (a stepped loop); d = condition mask"),
    SlotOp("X_CALL", "call of a valid function index: imm = VV_SLOT_REL(its address), w = the return address"),
    SlotOp("X_KUADD", "uload a imm + uadd b a (b != a): a constant operand"),
    SlotOp("X_KUSUB", "uload a imm + usub b a (b != a; sets ZF)"),
    SlotOp("X_KIADD", "iload a imm + iadd b a (b != a)"),
    SlotOp("X_KISUB", "iload a imm + isub b a (b != a)"),
    SlotOp("X_KUCJ", "uload a imm + ucmp b a + jcc (b != a); c = condition mask, w = VV_SLOT_REL(target)"),
    SlotOp("X_KICJ", "iload a imm + icmp b a + jcc (b != a); c = condition mask, w = VV_SLOT_REL(target)"),
    SlotOp("X_MOV_RET", "movr a b + ret"),
    SlotOp("X_PUSH_PUSH", "push a + push b"),
    SlotOp("X_POP_POP", "pop a + pop b"),
    SlotOp("X_POP_PUSH", "pop a + push b: the top entry read, then replaced"),
    SlotOp("X_POP_RET", "pop a + ret"),
)

# Two float operations on one register (csrc/vv_core.h "float pairs"), for every pair
# of fadd/fsub/fmul, in this order (the decoder's table vv_float_pair_sop follows it).
FLOAT_OPS = ("FADD", "FSUB", "FMUL")
INTERNAL += tuple(
    SlotOp(f"X_{first}_{second}", f"{first.lower()} a b + {second.lower()} a c: R[a] = (R[a] op R[b]) op R[c]")
    for first in FLOAT_OPS for second in FLOAT_OPS)
INTERNAL += tuple(
    SlotOp(f"X_MOV_{first}_{second}",
           f"movr a b + {first.lower()} a c + {second.lower()} a d: R[a] = (R[b] op R[c]) op R[d]")
    for first in FLOAT_OPS for second in FLOAT_OPS)


def numbering() -> dict[str, int]:
    """Every slot op's C name (``X_DECODE``, ``UADD``, ...) and number, in number order."""
    names = [op.name for op in INTERNAL]
    names += [op.mnemonic.upper() for op in sorted(isa.OPS, key=lambda o: o.code)]
    return {name: number for number, name in enumerate(names)}
