# cython: language_level=3
"""The assembler's compiled hot path: the common text-section lines, read from their characters.

Owns ``Scanner``, which voxasm.assembler uses when this extension is built (every install but
a pure-Python one, VOXVM_PUREPYTHON=1; docs/performance.md "The assembler"). Python's cost per
line (cutting it into token strings, a call per encoder, a ``bytes`` per instruction) is what
kept the assembler under 800 000 lines/s; here a line costs no Python object at all unless it
names a symbol.

* ``layout``: pass 1 over the lines of one chunk of a text section. It lays out, in order,
  every line that is blank, a comment, ``label NAME`` (a new ASCII identifier) or an
  instruction with exactly its operand count, and returns at the first other line (a
  directive, a data item, a string literal, a non-ASCII line, a wrong operand count, a name
  defined twice), which the Python code handles before handing it the rest.
* ``encode_pending``: pass 2. It encodes the pending instructions it can and returns the
  positions of the others, which the Python code encodes or reports.

It must do exactly what the Python path does with the lines it takes (tests/asm/test_scan.py
assembles the same sources both ways): a line is cut into tokens as ``str.split`` cuts it, its
comment as ``voxasm.source.split_comment`` cuts it, and an operand is encoded only in a
spelling of ``voxasm.encoding._FAST`` (some of them: a float is read by Python's own
``float``), to the same value. Anything else is left to Python: in layout the instruction waits
for pass 2 (as when the early encoder returns None), in pass 2 Python encodes or reports it.
The opcode table comes from Python (``SCAN_TABLE`` of voxasm/_optable.py, generated from
voxvm.isa): nothing of the ISA is written here.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.dict cimport PyDict_GetItem
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.long cimport PyLong_AsUnsignedLongLong
from cpython.object cimport PyObject
from libc.stdint cimport INT64_MAX, UINT64_MAX, uint64_t
from libc.string cimport memchr, memcmp, memcpy, memset

cdef extern from "Python.h":
    bint PyUnicode_Check(object o)
    bint PyUnicode_IS_ASCII(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    void* PyUnicode_DATA(object o)
    object PyUnicode_FromStringAndSize(const char* s, Py_ssize_t size)
    object PyFloat_FromString(object s)

# The most operands of any instruction this table takes, and the tokens a line is cut into
# at most: the mnemonic, that many operands and one more to see that there are too many.
cdef enum:
    MAX_OPERANDS = 4
    MAX_TOKENS = MAX_OPERANDS + 2
    MAX_NAME = 15              # longest mnemonic
    SLOTS = 512                # mnemonic hash table (a power of two, > 2x the opcodes)
    MAX_OPS = 256
    MAX_SIZE = 1 + 8 * MAX_OPERANDS

# Operand classes (voxvm.isa.Operand, by its short name; DITEM and DADDR take the same spellings).
cdef enum:
    K_REG, K_U64, K_I64, K_F64, K_IMM16, K_ADDR, K_FUNC, K_DATA
KINDS = {"reg": K_REG, "imm64u": K_U64, "imm64i": K_I64, "imm64f": K_F64, "imm16": K_IMM16,
         "addr": K_ADDR, "func": K_FUNC, "ditem": K_DATA, "daddr": K_DATA}

cdef struct OpInfo:
    unsigned char name[MAX_NAME + 1]
    int name_len
    unsigned char code
    int size               # bytes: the opcode and every operand
    int count              # operands
    int kinds[MAX_OPERANDS]
    int widths[MAX_OPERANDS]

cdef struct Line:
    const unsigned char* text  # the line's characters (ASCII)
    int tokens                 # of its code part, as str.split() cuts it (MAX_TOKENS + 1: more)
    Py_ssize_t starts[MAX_TOKENS]
    Py_ssize_t ends[MAX_TOKENS]
    OpInfo* op                 # the instruction its first token names, or NULL

# What str.split() cuts ASCII text at (str.isspace(): \t \n \v \f \r, \x1c-\x1f, space).
cdef unsigned char SPACE[256]
memset(SPACE, 0, 256)
for _c in (9, 10, 11, 12, 13, 28, 29, 30, 31, 32):
    SPACE[_c] = 1


cdef inline bint _digits(const unsigned char* t, Py_ssize_t n) noexcept nogil:
    """All of ``t[:n]`` (n >= 1) is ASCII decimal digits."""
    cdef Py_ssize_t i
    for i in range(n):
        if t[i] < 48 or t[i] > 57:
            return False
    return True


cdef inline bint _decimal(const unsigned char* t, Py_ssize_t n, uint64_t* out) noexcept nogil:
    """``int(t)`` for 1..20 ASCII digits that fit in 64 bits."""
    cdef uint64_t value = 0, digit
    cdef Py_ssize_t i
    if n < 1 or n > 20:
        return False
    for i in range(n):
        digit = t[i] - 48
        if digit > 9:
            return False
        if value > (UINT64_MAX - digit) // 10:
            return False
        value = value * 10 + digit
    out[0] = value
    return True


cdef inline int _hex_digit(unsigned char c) noexcept nogil:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


cdef class Scanner:
    """The compiled layout and pass 2 of one assembly run, over that run's tables.

    ``table``: ``(mnemonic, opcode, ((operand short name, width), ...))`` of every instruction
    layout may encode (voxasm/_optable.py ``SCAN_TABLE``); ``registers``: how many there are
    (``r0``..``r{registers-1}``); ``syms``: the run's SymbolTable; then the run's image,
    line numbers and pending instructions (voxasm.assembler._Assembler.layout), appended to
    in place.
    """

    cdef OpInfo ops[MAX_OPS]
    cdef int slots[SLOTS]
    cdef int registers
    cdef dict labels, functions, data, kinds
    cdef bytearray code
    cdef bytearray numbers, pending_lines, pending_offsets   # native uint32, uint32, uint64 each
    cdef list pending_text

    def __init__(self, table, int registers, syms, bytearray code, bytearray numbers,
                 bytearray pending_lines, bytearray pending_offsets, list pending_text):
        if registers < 1 or registers > 100:
            raise ValueError(f"{registers} registers: r0..r99 at most")
        self.registers = registers
        self.labels, self.functions = syms.labels, syms.functions
        self.data, self.kinds = syms.data, syms.kinds
        self.code, self.numbers = code, numbers
        self.pending_lines, self.pending_offsets, self.pending_text = pending_lines, pending_offsets, pending_text
        memset(self.slots, 0, sizeof(self.slots))
        if len(table) > MAX_OPS:
            raise ValueError("too many opcodes for the scanner's table")
        cdef int index = 0, k
        cdef OpInfo* op
        cdef bytes name
        for mnemonic, opcode, operands in table:
            name = mnemonic.encode("ascii")
            if not 0 < len(name) <= MAX_NAME or len(operands) > MAX_OPERANDS:
                raise ValueError(f"the scanner cannot take {mnemonic!r}")
            op = &self.ops[index]
            memset(op, 0, sizeof(OpInfo))
            memcpy(op.name, <const char*>name, len(name))
            op.name_len = len(name)
            op.code = opcode
            op.count = len(operands)
            op.size = 1
            for k, (short, width) in enumerate(operands):
                if width not in (1, 2, 8) or short not in KINDS:
                    # (a new operand class needs its case in _operand, like its fast path in
                    # voxasm.encoding._FAST: docs/adding-an-opcode.md)
                    raise ValueError(f"{mnemonic}: the scanner has no operand class {short!r} of {width} bytes")
                op.kinds[k] = KINDS[short]
                op.widths[k] = width
                op.size += width
            self._insert(index)
            index += 1

    cdef inline unsigned int _hash(self, const unsigned char* s, Py_ssize_t n) noexcept nogil:
        cdef unsigned int h = <unsigned int>n
        cdef Py_ssize_t i
        for i in range(n):
            h = h * 31 + s[i]
        return h & (SLOTS - 1)

    cdef void _insert(self, int index) except *:
        cdef OpInfo* op = &self.ops[index]
        cdef unsigned int slot = self._hash(op.name, op.name_len)
        while self.slots[slot]:
            if self.ops[self.slots[slot] - 1].name_len == op.name_len and \
                    memcmp(self.ops[self.slots[slot] - 1].name, op.name, op.name_len) == 0:
                raise ValueError("a mnemonic is in the table twice")
            slot = (slot + 1) & (SLOTS - 1)
        self.slots[slot] = index + 1

    cdef inline OpInfo* _find(self, const unsigned char* s, Py_ssize_t n) noexcept nogil:
        """The instruction named ``s[:n]``, or NULL."""
        cdef unsigned int slot
        cdef OpInfo* op
        if n > MAX_NAME:
            return NULL
        slot = self._hash(s, n)
        while self.slots[slot]:
            op = &self.ops[self.slots[slot] - 1]
            if op.name_len == n and memcmp(op.name, s, n) == 0:
                return op
            slot = (slot + 1) & (SLOTS - 1)
        return NULL

    cdef inline int _value(self, dict names, const unsigned char* s, Py_ssize_t n, uint64_t* out) except -1:
        """``names[s[:n]]`` (1), or 0 when the name is not there."""
        cdef PyObject* found = PyDict_GetItem(names, PyUnicode_FromStringAndSize(<const char*>s, n))
        if found == NULL:
            return 0
        out[0] = PyLong_AsUnsignedLongLong(<object>found)
        return 1

    cdef int _operand(self, int kind, const unsigned char* t, Py_ssize_t n, uint64_t* out) except -1:
        """Token ``t[:n]`` as an operand of class ``kind``: 1 and its value in a spelling of
        voxasm.encoding._FAST (the same value), else 0 (Python takes the line)."""
        cdef uint64_t value = 0
        cdef Py_ssize_t i
        cdef int digit
        cdef double number
        if kind == K_REG:                       # r0..r31 exactly (REGISTERS' keys)
            if t[0] != 114 or n < 2 or n > 3 or not _digits(t + 1, n - 1) or (n == 3 and t[1] == 48):
                return 0
            value = t[1] - 48 if n == 2 else (t[1] - 48) * 10 + t[2] - 48
            if value >= <uint64_t>self.registers:
                return 0
        elif kind == K_U64:                     # decimal, or 0x and 1..16 hex digits
            if not _decimal(t, n, &value):
                if n < 3 or n > 18 or t[0] != 48 or (t[1] != 120 and t[1] != 88):
                    return 0
                for i in range(2, n):
                    digit = _hex_digit(t[i])
                    if digit < 0:
                        return 0
                    value = value * 16 + <uint64_t>digit
        elif kind == K_I64:                     # decimal, or '-' and decimal, in range
            if n > 20:
                return 0
            if t[0] == 45:
                if not _decimal(t + 1, n - 1, &value) or value > <uint64_t>INT64_MAX + 1:
                    return 0
                value = (~value) + 1            # & U64_MAX: two's complement
            elif not _decimal(t, n, &value) or value > <uint64_t>INT64_MAX:
                return 0
        elif kind == K_F64:                     # ASCII without '_': Python's float() reads it
            if memchr(t, 95, n) != NULL:
                return 0
            try:
                number = PyFloat_AS_DOUBLE(PyFloat_FromString(PyUnicode_FromStringAndSize(<const char*>t, n)))
            except ValueError:
                return 0
            memcpy(&value, &number, 8)          # its IEEE-754 bits (literals.float_bits)
        elif kind == K_IMM16:
            if not _decimal(t, n, &value) or value > 0xFFFF:
                return 0
        elif kind == K_ADDR or kind == K_FUNC:  # @name, defined already
            if t[0] != 64 or not self._value(self.labels if kind == K_ADDR else self.functions,
                                             t + 1, n - 1, &value):
                return 0
        elif kind == K_DATA:                    # a data item defined already, or a decimal offset
            # (a name never starts with a digit, so no digits name an item)
            if not _decimal(t, n, &value) and not self._value(self.data, t, n, &value):
                return 0
        else:
            return 0
        out[0] = value
        return 1

    cdef int _encode(self, Line* line, unsigned char* out) except -1:
        """The bytes of ``line``'s instruction (with exactly its operands) into ``out`` (1),
        or 0 if an operand is not for this path."""
        cdef OpInfo* op = line.op
        cdef int k, w, at = 1
        cdef uint64_t value
        out[0] = op.code
        for k in range(op.count):
            if not self._operand(op.kinds[k], line.text + line.starts[k + 1],
                                 line.ends[k + 1] - line.starts[k + 1], &value):
                return 0
            w = op.widths[k]
            if w < 8 and value >> (8 * w):
                return 0
            while w:                            # big-endian
                w -= 1
                out[at + w] = value & 0xFF
                value >>= 8
            at += op.widths[k]
        return 1

    cdef inline Py_ssize_t _code_of(self, object line, const unsigned char** text) except -2:
        """The length of the code part of ``line`` (before its comment) and its characters,
        or -1 if Python must read the line (not ASCII, or it has a string literal)."""
        cdef Py_ssize_t n, i
        cdef const unsigned char* s
        cdef unsigned char c
        if not PyUnicode_Check(line) or not PyUnicode_IS_ASCII(line):
            return -1
        s = <const unsigned char*>PyUnicode_DATA(line)
        n = PyUnicode_GET_LENGTH(line)
        text[0] = s
        for i in range(n):
            c = s[i]
            if c == 59 or c == 35:              # ';' or '#': the comment starts (split_comment)
                return i
            if c == 34:                         # '"'
                return -1
        return n

    cdef inline int _tokens(self, const unsigned char* s, Py_ssize_t n, Py_ssize_t* starts,
                            Py_ssize_t* ends) noexcept nogil:
        """Cut ``s[:n]`` as str.split() does: how many tokens (MAX_TOKENS + 1: more than MAX_TOKENS)."""
        cdef Py_ssize_t i = 0
        cdef int count = 0
        while True:
            while i < n and SPACE[s[i]]:
                i += 1
            if i == n:
                return count
            if count == MAX_TOKENS:
                return MAX_TOKENS + 1
            starts[count] = i
            while i < n and not SPACE[s[i]]:
                i += 1
            ends[count] = i
            count += 1

    cdef int _read(self, object text, Line* line) except -1:
        """Cut ``text`` into ``line``: 1, or 0 if Python must read it (not ASCII, or it has a
        string literal)."""
        cdef Py_ssize_t n = self._code_of(text, &line.text)
        if n < 0:
            return 0
        line.tokens = self._tokens(line.text, n, line.starts, line.ends)
        line.op = self._find(line.text + line.starts[0], line.ends[0] - line.starts[0]) if line.tokens else NULL
        return 1

    cdef int _emit(self, const unsigned char* data, Py_ssize_t size) except -1:
        cdef Py_ssize_t at = PyByteArray_GET_SIZE(self.code)
        PyByteArray_Resize(self.code, at + size)
        if data == NULL:
            memset(PyByteArray_AS_STRING(self.code) + at, 0, size)
        else:
            memcpy(PyByteArray_AS_STRING(self.code) + at, data, size)
        return 0

    def layout(self, list lines, Py_ssize_t pos, Py_ssize_t base):
        """Lay out ``lines[pos:]`` (line ``base`` + i is ``lines[i]``) up to the first line that is
        not for this path; its position (``len(lines)`` when there is none)."""
        cdef Py_ssize_t count = PyList_GET_SIZE(lines), at, length
        cdef Line line
        cdef unsigned char encoded[MAX_SIZE]
        cdef const unsigned char* word
        cdef object text, name
        while pos < count:
            text = <object>PyList_GET_ITEM(lines, pos)
            if not self._read(text, &line):
                return pos
            if line.tokens == 0:                # blank, or only a comment
                pos += 1
                continue
            if line.op != NULL:
                if line.tokens != line.op.count + 1:
                    return pos
                at = PyByteArray_GET_SIZE(self.code)
                if self._encode(&line, encoded):
                    self._emit(encoded, line.op.size)
                else:                           # a name defined further down, or for Python
                    self._emit(NULL, line.op.size)   # to read in pass 2: it waits, in its size
                    self._u32(self.pending_lines, base + pos)
                    self._u64(self.pending_offsets, at)
                    self.pending_text.append(text)
                self._u32(self.numbers, base + pos + 1)
                pos += 1
                continue
            if line.tokens != 2 or line.ends[0] - line.starts[0] != 5 or \
                    memcmp(line.text + line.starts[0], b"label", 5) != 0:
                return pos                      # a directive, a data item, a wrong mnemonic
            word = line.text + line.starts[1]
            length = line.ends[1] - line.starts[1]
            if not self._identifier(word, length):
                return pos
            name = PyUnicode_FromStringAndSize(<const char*>word, length)
            if name in self.kinds:              # defined twice: Python reports it
                return pos
            self.kinds[name] = ("label", base + pos + 1)
            self.labels[name] = PyByteArray_GET_SIZE(self.code)
            pos += 1
        return pos

    cdef inline bint _identifier(self, const unsigned char* t, Py_ssize_t n) noexcept nogil:
        """``str.isidentifier() and str.isascii()`` of ASCII ``t[:n]``."""
        cdef Py_ssize_t i
        cdef unsigned char c
        for i in range(n):
            c = t[i]
            if not (c == 95 or 65 <= c <= 90 or 97 <= c <= 122 or (i and 48 <= c <= 57)):
                return False
        return n > 0

    cdef inline int _u32(self, bytearray out, Py_ssize_t value) except -1:
        """Append ``value`` to ``out`` as a native uint32 (what memoryview.cast("I") reads)."""
        cdef unsigned int word = <unsigned int>value
        cdef Py_ssize_t n = PyByteArray_GET_SIZE(out)
        PyByteArray_Resize(out, n + 4)
        memcpy(PyByteArray_AS_STRING(out) + n, &word, 4)
        return 0

    cdef inline int _u64(self, bytearray out, Py_ssize_t value) except -1:
        """Append ``value`` to ``out`` as a native uint64 (memoryview.cast("Q"))."""
        cdef unsigned long long word = <unsigned long long>value
        cdef Py_ssize_t n = PyByteArray_GET_SIZE(out)
        PyByteArray_Resize(out, n + 8)
        memcpy(PyByteArray_AS_STRING(out) + n, &word, 8)
        return 0

    def encode_pending(self):
        """Pass 2: encode every pending instruction this path can, in place; the positions
        (in the pending lists) of the others, in order, as a list."""
        cdef Py_ssize_t k, offset, total = len(self.pending_text)
        cdef Line line
        cdef unsigned char encoded[MAX_SIZE]
        cdef list rest = []
        cdef unsigned long long place
        if PyByteArray_GET_SIZE(self.pending_offsets) < 8 * total:
            raise ValueError("fewer pending offsets than pending lines")
        for k in range(total):
            if self._read(<object>PyList_GET_ITEM(self.pending_text, k), &line) and line.op != NULL \
                    and line.tokens == line.op.count + 1 and self._encode(&line, encoded):
                memcpy(&place, PyByteArray_AS_STRING(self.pending_offsets) + 8 * k, 8)
                offset = <Py_ssize_t>place
                if offset + line.op.size > PyByteArray_GET_SIZE(self.code):   # pragma: no cover - layout reserved it
                    raise AssertionError("pending instruction past the end of the code")
                memcpy(PyByteArray_AS_STRING(self.code) + offset, encoded, line.op.size)
            else:
                rest.append(k)
        return rest
