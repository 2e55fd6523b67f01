"""The two-pass assembler: ``.vvs`` text -> ``voxvm.program.Program``.

Pass 1 (layout) reads every line once: it strips comments, classifies the
line (directive, instruction, data item), gives every instruction its
address from the ISA table size, defines labels, functions and data labels,
and encodes data items and every instruction whose operands it can already
resolve (registers, immediates, names defined above: most lines). Pass 2
(encoding) reads the source again and encodes the rest (forward references
to ``@label``, ``@function``, data labels) against the complete symbol table
into the places pass 1 reserved; it also produces every per-operand
diagnostic. A name's value never changes once defined, so encoding in either
pass gives the same bytes.

Memory stays a small multiple of the source (docs/performance.md, "The
assembler"): the source is decoded and cut into lines a chunk at a time
(``source.text_chunks``), instructions are encoded straight into one
``bytearray``, and per instruction only its line number (4 bytes, the
``LineTable``) and, if it waits for pass 2, its line and offset (12 bytes)
are kept. Lines that repeat exactly (``ret``, ``uadd r1 r2``, ``jmp @loop``)
are encoded once: a bounded cache maps a line to its bytes. Data from every ``section data``
is merged into one segment placed after all the code (semantics.md §3
item 21). Errors never stop the run: each becomes a ``Diagnostic`` and a bad
instruction still occupies its table size, so later addresses stay sensible;
at the end all errors are raised together as one ``AssemblyError``.

Pure: no I/O, no global state; safe to call many times (the disassembler's
round-trip tests do).
"""

from __future__ import annotations

import gc
import struct
TYPE_CHECKING = False     # typing costs start-up time (voxvm run FILE.vvs); annotations are strings
if TYPE_CHECKING:
    from typing import Iterator

from voxvm.program import Program, Symbols
from voxvm.tags import NUM_REGISTERS

from ._optable import OPCODES, SCAN_TABLE
from .data import ITEM_HEADER_SIZE, MAX_DATA_PAYLOAD, ItemError, looks_like_item, parse_item
from .diagnostics import AssemblyError, Diagnostic
from .linetable import LineTable
from .literals import LiteralError, is_name, show_token
from .source import Split, count_tokens, split_comment, text_chunks, token_spans
from .symbols import MAX_SUGGESTED_WORD, SymbolTable

try:
    from ._scan import Scanner   # the compiled hot path (voxasm/_scan.pyx)
except ImportError:              # a pure-Python install (VOXVM_PUREPYTHON=1)
    Scanner = None

# voxasm.encoding (the Python encoders, and through it voxvm.isa) is imported by the methods
# that need it, when a line reaches them: with the compiled scanner, a typical file never
# does (docs/performance.md "The assembler").

_DIRECTIVES = ("section", "func", "label", ".start")
_KEYWORDS = sorted([*OPCODES, *_DIRECTIVES])
# Tokens of a line that layout ever looks at: the mnemonic, the most operands of any
# instruction, and one more to notice that there are too many.
HEAD_TOKENS = 1 + max(count for _, _, count in OPCODES.values()) + 1
# Distinct encoded lines remembered (about 150 bytes each); the cache starts over when full.
CACHE_LIMIT = 1 << 16
# What pass 1 writes where an instruction waits for pass 2 (or is wrong): its size in zeros.
_RESERVED = [bytes(size) for size in range(max(size for _, size, _ in OPCODES.values()) + 1)]
# Line numbers and pending lines are native uint32, offsets native uint64, in bytearrays (4 and
# 8 bytes each: what the scanner writes and memoryview.cast("I"/"Q") reads; the array module
# would import the collections package).
_U32 = struct.Struct("=I").pack
_U64 = struct.Struct("=Q").pack


def _pack_numbers(numbers: list[int]) -> bytes:
    return struct.pack(f"={len(numbers)}I", *numbers)


def _usage_error(message: str) -> Exception:
    from voxvm.errors import UsageError     # (only on this path)

    return UsageError(message)


def assemble(source: bytes | str, path: str = "<input>", *,
             warnings: list[Diagnostic] | None = None, pause_gc: bool = False) -> Program:
    """Assemble ``.vvs`` source into a ``Program``; raise ``AssemblyError`` listing every error.

    ``path`` is used in messages and recorded in the program's symbols.
    Warnings (legal but suspicious lines) are appended to ``warnings`` if a
    list is given, and are otherwise dropped. ``pause_gc=True`` pauses
    Python's process-wide cyclic garbage collector while assembling (about a
    third faster on large files); only a process that does nothing else at the
    same time should ask for it, which is why the command lines do and the
    default does not.

    >>> p = assemble("section text\\n.start\\n uload r1 42\\n halt\\n")
    >>> p.image.hex(), p.entry, p.data_base
    ('1001000000000000002aff', 0, 0)
    """
    if not isinstance(source, (str, bytes, bytearray, memoryview)):
        # (bytes(5) would be five NUL bytes of "source")
        raise _usage_error(f"assemble: the source is text or bytes, not {type(source).__name__}")
    if warnings is not None and not isinstance(warnings, list):
        raise _usage_error(f"assemble: warnings is a list to append to, not {type(warnings).__name__}")
    # The run allocates hundreds of thousands of small acyclic objects (token
    # lists, tuples, bytes); the cyclic GC would scan them again and again for
    # nothing (about a third of the run time). Pausing it is process-wide state,
    # so only on request.
    paused = pause_gc and gc.isenabled()
    if paused:
        gc.disable()
    try:
        return _Assembler(path, source).run(warnings)
    finally:
        if paused:
            gc.enable()


class _Assembler:
    """The state of one assembly run (one file)."""

    def __init__(self, path: str, source: bytes | str) -> None:
        self.path = path
        self.source = source
        self.errors: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        self.syms = SymbolTable()
        self.chunk_base = 0                 # index of the first line of chunk_lines
        self.chunk_lines: list[str] = []    # the lines being read
        self.known_lines: dict[int, str] = {}   # lines outside it that diagnostics need now

    # --- the source, a chunk of lines at a time ----------------------------------------

    def chunks(self, first_pass: bool) -> Iterator[tuple[int, list[str]]]:
        """``(index of its first line, lines)`` for each chunk of the source, in order."""
        base = 0
        for piece in text_chunks(self.source, self.path):
            lines = piece.split("\n")
            self.chunk_base, self.chunk_lines = base, lines
            if first_pass and "\x00" in piece:
                self._reject_nul_lines(base, lines)
            yield base, lines
            base += len(lines)
        self.chunk_lines = []

    def source_line(self, index: int) -> str:
        """Line ``index`` (0-based) as read; "" past the end."""
        offset = index - self.chunk_base
        if 0 <= offset < len(self.chunk_lines):
            return self.chunk_lines[offset]
        if index in self.known_lines:
            return self.known_lines[index]
        return self.lines_at([index]).get(index, "")

    def lines_at(self, indices: list[int]) -> dict[int, str]:
        """Lines outside the current chunk, read again in one pass over the source."""
        wanted = sorted(set(indices))
        found: dict[int, str] = {}
        position = 0
        base = 0
        for piece in text_chunks(self.source, self.path):
            lines = piece.split("\n")
            while position < len(wanted) and wanted[position] < base + len(lines):
                found[wanted[position]] = lines[wanted[position] - base]
                position += 1
            if position == len(wanted):
                break
            base += len(lines)
        return found

    # --- diagnostics -------------------------------------------------------------------

    def _diag(self, sink: list, index: int, column: int, length: int, message: str,
              hint: str | None, severity: str) -> None:
        sink.append(Diagnostic(self.path, index + 1, column + 1, message,
                               source_line=self.source_line(index),
                               length=max(length, 1), hint=hint, severity=severity))

    def error(self, index: int, column: int, length: int, message: str, hint: str | None = None) -> None:
        """Record an error at 0-based line ``index`` and 0-based ``column``."""
        self._diag(self.errors, index, column, length, message, hint, "error")

    def warn(self, index: int, column: int, length: int, message: str, hint: str | None = None) -> None:
        self._diag(self.warnings, index, column, length, message, hint, "warning")

    def error_at_token(self, index: int, code: str, position: int, message: str,
                       hint: str | None = None) -> None:
        """An error about token number ``position`` of ``code`` (or its end if it is missing)."""
        spans = token_spans(code, position + 1)
        if position < len(spans):
            column, token = spans[position]
            self.error(index, column, len(token), message, hint)
        else:
            self.error(index, len(code.rstrip()), 1, message, hint)

    # --- the run ----------------------------------------------------------------------

    def run(self, warnings: list[Diagnostic] | None) -> Program:
        self.layout()
        self.encode()
        self.check_code_addresses()
        if not self.numbers and not self.errors:
            # semantics.md and upstream.md are silent; an image without code cannot run (docs/vvs-language.md).
            self.errors.append(Diagnostic(
                self.path, 1, 1, "no code to assemble: the file has no instructions",
                hint="a program needs at least one instruction, e.g. 'halt'"))
        self.warnings.sort(key=lambda d: (d.line, d.column))
        if warnings is not None:
            warnings.extend(self.warnings)
        if self.errors:
            raise AssemblyError(self.errors, self.path, self.warnings)
        code = self.code
        code_size = len(code)
        for chunk in self.data_chunks:
            code += chunk
        image = bytes(code)
        del self.code, code
        if self.data_chunks:
            data_base = code_size
        else:
            # No data: what upstream writes (address of the last `section
            # data` line, 0 without one), so such files stay byte-identical.
            data_base = self.last_data_section_address
        lines_table = LineTable(image, self.numbers, code_size,
                                [(code_size + offset, line) for offset, line in self.data_lines])
        names = {index: name for name, index in self.syms.functions.items()}
        symbols = Symbols(functions=names, lines=lines_table, source_path=self.path,
                          labels=self.syms.labels, data=self.syms.data)
        return Program(image=image, entry=self.entry, data_base=data_base,
                       functions=tuple(self.function_addresses), path=self.path, symbols=symbols)

    def check_code_addresses(self) -> None:
        """``.start`` and every ``func`` should name an instruction (docs/vvs-language.md).

        One placed after the last instruction names the end of the code. With
        nothing after the code that address lies outside the image and the
        loader would reject the ``.vve``: an error. With data after the code it
        names the data (loadable, and what a disassembly of such a file says):
        a warning.
        """
        end = self.code_size
        if not self.numbers:
            return                      # "no code to assemble" says it already
        report = self.warn if self.data_chunks else self.error
        where = "it names the start of the data" if self.data_chunks else "nothing follows it"
        empty = [(name, number) for name, number in self.syms.functions.items()
                 if self.function_addresses[number] == end]
        starts = self.start_line is not None and self.entry == end
        if not empty and not starts:
            return
        wanted = [self.syms.kinds[name][1] - 1 for name, _ in empty]
        self.known_lines = lines = self.lines_at(wanted + ([self.start_line - 1] if starts else []))
        if starts:
            index = self.start_line - 1
            report(index, lines[index].find(".start"), 6,
                   f"'.start' is not followed by any instruction: {where}",
                   "put '.start' before the first instruction to run")
        for name, _ in empty:
            index = self.syms.kinds[name][1] - 1
            spans = token_spans(split_comment(lines[index]).code, 2)
            report(index, spans[1][0], len(name),
                   f"function {show_token(name)} has no instructions: {where}",
                   "a function needs at least one instruction, e.g. 'ret'")
        self.known_lines = {}

    def _reject_nul_lines(self, base: int, lines: list[str]) -> None:
        """NUL outside a string literal or comment means a binary file or corruption.

        Those lines (of the chunk starting at line ``base``) are reported and
        blanked; a NUL character inside a ``str`` literal is text like any
        other (upstream stores it).
        """
        for offset, line in enumerate(lines):
            if "\x00" not in line:
                continue
            index = base + offset
            code, q1, q2 = split_comment(line)
            column = code.find("\x00")
            if q1 >= 0 and q2 > q1:
                outside = code[:q1] + "\x01" * (q2 + 1 - q1) + code[q2 + 1:]
                column = outside.find("\x00")
            if column >= 0:
                self.error(index, column, 1, "NUL byte in the source", "is this a binary file?")
                lines[offset] = ""

    # --- pass 1: layout ---------------------------------------------------------------

    def layout(self) -> None:
        """Addresses, symbols and data; instructions are encoded where their names are known.

        ``self.code`` gets each instruction's bytes, in order; an instruction
        that names a symbol not defined yet (or needs a diagnostic) gets its
        size in zeros and its line and offset in ``pending_lines`` /
        ``pending_offsets`` for pass 2. ``self.numbers`` gets every
        instruction's line number. An instruction's address is ``len(code)``
        when it is read.

        The common lines of a text section take a hot path: the compiled
        ``Scanner`` (voxasm/_scan.pyx) when it is built, else ``layout_fast``;
        every other line, and every line in a data section, goes through
        ``layout_line``, which handles any line (the hot paths only ever do what
        it would do, faster).
        """
        self.code = bytearray()
        self.numbers = bytearray()           # line of instruction i (uint32)
        self.pending_lines = bytearray()     # index of each line waiting for pass 2 (uint32)
        self.pending_offsets = bytearray()   # and where its bytes go (uint64)
        self.pending_text: list[str] = []    # and its text (read again in pass 2)
        self.line_cache: dict[str, bytes] = {}   # line -> its encoding (text section)
        self.data_chunks: list[bytes] = []
        self.data_lines: list[tuple[int, int]] = []
        self.function_addresses: list[int] = []
        self.entry = 0
        self.start_line: int | None = None
        self.last_data_section_address = 0
        self.data_offset = self.data_payload = 0
        self.in_text = True  # every file starts in the text section (upstream bug 37 fixed)
        self.scan = scanner = self.scanner()
        for base, lines in self.chunks(first_pass=True):
            if scanner is None:
                self.layout_fast(base, lines)
                continue
            position, count = 0, len(lines)
            while position < count:
                if self.in_text:
                    position = scanner.layout(lines, position, base)
                    if position == count:
                        break
                self.layout_line(base + position, lines[position], None)
                position += 1
        self.code_size = len(self.code)

    def scanner(self) -> Scanner | None:
        """The compiled hot path over this run's tables, or None (a pure-Python install)."""
        if Scanner is None:
            return None
        return Scanner(SCAN_TABLE, NUM_REGISTERS, self.syms, self.code, self.numbers,
                       self.pending_lines, self.pending_offsets, self.pending_text)

    def layout_fast(self, base: int, lines: list[str]) -> None:
        """Lay out one chunk's ``lines`` (the first is line ``base``) in Python.

        The common lines of a text section are handled here, the rest by
        ``layout_line``. A line that repeats one seen before gets the same
        bytes from a cache. Otherwise the line is cut into tokens before
        looking for a comment, because a token the early encoder accepts holds
        no ';', '#' or '"' (encoding._FAST): a line of exactly its mnemonic and
        operands that encodes has neither comment nor string literal.
        """
        syms = self.syms
        code = self.code
        # Line numbers go to a list, packed into self.numbers before layout_line (which
        # appends there itself) and at the end: one pack per run of lines, not per line.
        numbers: list[int] = []
        number_append = numbers.append
        pending_lines, pending_offsets, pending_text = self.pending_lines, self.pending_offsets, self.pending_text
        u32, u64 = _U32, _U64
        labels, kinds = syms.labels, syms.kinds
        cache = self.line_cache
        cache_get = cache.get
        from .encoding import early_encoders

        early_get = early_encoders().get
        reserved = _RESERVED
        layout_line = self.layout_line
        in_text = self.in_text
        for index, line in enumerate(lines, base):
            if not in_text:
                # (nothing is left in ``numbers``: the line that left the text section
                # went through layout_line below)
                layout_line(index, line, None)
                in_text = self.in_text
                continue
            encoded = cache_get(line)
            if encoded is not None:  # the hottest path: a line seen before
                number_append(index + 1)
                code += encoded
                continue
            # Only the head of a line is cut into tokens: a line never needs more than
            # HEAD_TOKENS of them, and splitting all of a line of millions of words
            # would cost ~50 bytes a word (docs/resource-limits.md). A longer line's
            # last token holds its unsplit rest, so "too many" is still seen.
            toks = line.split(None, HEAD_TOKENS)
            if not toks:
                continue
            fast = early_get(toks[0])
            if fast is not None:
                if len(toks) == fast[0]:
                    encoded = fast[1](toks, syms)
                    if encoded is not None:
                        number_append(index + 1)
                        code += encoded
                        if len(cache) >= CACHE_LIMIT:
                            cache.clear()
                        cache[line] = encoded
                        continue
                    if not ('"' in line or ";" in line or "#" in line):
                        # A name defined further down (or a rarer spelling, or
                        # an error): what layout_line would do too.
                        number_append(index + 1)
                        pending_lines += u32(index)
                        pending_offsets += u64(len(code))
                        pending_text.append(line)
                        code += reserved[fast[2]]
                        continue
            elif toks[0] == "label":
                if len(toks) == 2:
                    name = toks[1]   # the common label line, as define_code_name
                    # (a name that is an identifier holds no comment or string)
                    if name not in kinds and name.isidentifier() and name.isascii():
                        kinds[name] = ("label", index + 1)
                        labels[name] = len(code)
                        continue
            elif toks[0][0] == ";" or toks[0][0] == "#":
                continue             # a comment line
            if numbers:
                self.numbers += _pack_numbers(numbers)
                numbers.clear()
            layout_line(index, line, toks)
            in_text = self.in_text
        if numbers:
            self.numbers += _pack_numbers(numbers)

    def layout_line(self, index: int, line: str, toks: list[str] | None) -> None:
        """Lay out any one line (0-based ``index``); ``toks``: the line cut into tokens
        (HEAD_TOKENS at most), if the caller did already."""
        in_text = self.in_text
        code = self.code
        raw = line
        if '"' in line or ";" in line or "#" in line:
            split = split_comment(line)
            line = split.code
            toks = line.split(None, HEAD_TOKENS)
        else:
            split = None
            if toks is None:
                toks = line.split(None, HEAD_TOKENS)
        if not toks:
            return
        head = toks[0]
        if in_text:
            if head in OPCODES:
                from .encoding import ENCODERS

                entry = ENCODERS[head]
                # An instruction line with a comment, a wrong operand count, an
                # instruction that waits for pass 2 (a lint) or a string literal.
                self.numbers += _U32(index + 1)
                if split is not None and split.quote_start >= 0:
                    self.error(index, split.quote_start, 1, "string literal in an instruction",
                               "strings belong in 'section data' items: NAME str \"text\"")
                else:
                    if entry[4] and len(toks) == entry[1] + 1:
                        encoded = entry[5](toks, self.syms)   # (None: pass 2 encodes or reports it)
                        if encoded is not None:
                            code += encoded
                            cache = self.line_cache
                            if len(cache) >= CACHE_LIMIT:
                                cache.clear()
                            cache[raw] = encoded
                            return
                    self.pending_lines += _U32(index)
                    self.pending_offsets += _U64(len(code))
                    self.pending_text.append(raw)
                code += _RESERVED[entry[3]]    # a wrong one takes its size too
                return
        if head in _DIRECTIVES:
            if split is not None and split.quote_start >= 0:
                self.error(index, split.quote_start, 1, f"a '{head}' line takes no string literal")
                return
            if head != "section" and not in_text:
                # Data goes after all the code, so a code address named
                # here is that of the next instruction, not of the data.
                self.warn(index, line.find(head), len(head),
                          f"'{head}' in a data section refers to the next instruction's address",
                          "put it after 'section text'")
            if head == "label" or head == "func":
                self.define_code_name(index, line, toks, len(code))
            elif head == ".start":
                self.extra_tokens_warning(index, line, toks, 1)
                if self.start_line is not None:
                    self.warn(index, line.find(".start"), 6,
                              f"'.start' given again (the one before is on line {self.start_line}); "
                              f"the last one wins")
                self.entry = len(code)
                self.start_line = index + 1
            else:
                self.in_text = self.section(index, line, toks, in_text, len(code))
            return
        if in_text:
            self.unknown_mnemonic(index, line, toks)
        else:
            self.data_item(index, line, split, toks)

    def data_item(self, index: int, line: str, split: Split | None, toks: list[str]) -> None:
        """A line of a data section that is not a directive (its code part ``line``)."""
        head = toks[0]
        if head in OPCODES and not looks_like_item(toks):
            self.error_at_token(index, line, 0, f"instruction {show_token(head)} in a data section",
                                "put 'section text' before code")
            return
        try:
            item = parse_item(split or Split(line, -1, -1))
        except ItemError as exc:
            self.error(index, exc.column, exc.length, exc.message, exc.hint)
            self.claim_bad_item_name(index, toks[0] if len(toks) >= 2 else "")
            return
        payload = len(item.encoded) - ITEM_HEADER_SIZE
        if self.data_payload + payload > MAX_DATA_PAYLOAD:
            self.error(index, item.name_column, len(item.name),
                       f"data item {show_token(item.name)} takes the data items past "
                       f"{MAX_DATA_PAYLOAD >> 20} MiB ({self.data_payload} bytes before it, {payload} in it)",
                       "all items together may hold at most as much as one item")
            self.claim_bad_item_name(index, item.name)
            return
        self.data_payload += payload
        for column, length, message in item.warnings:
            self.warn(index, column, length, message)
        if self.define(index, item.name, "data item", item.name_column):
            self.syms.data[item.name] = self.data_offset
        self.data_chunks.append(item.encoded)
        self.data_lines.append((self.data_offset, index + 1))
        self.data_offset += len(item.encoded)

    def claim_bad_item_name(self, index: int, name: str) -> None:
        """A data item with an error still defines its name (when it has a valid one), so that
        each use of it does not report 'unknown data item' ahead of the real error; with an
        error nothing is emitted, so the offset it gets does not matter."""
        if is_name(name) and name not in self.syms.kinds:
            self.syms.kinds[name] = ("data item", index + 1)
            self.syms.data[name] = self.data_offset

    def define(self, index: int, name: str, kind: str, column: int | None = None) -> bool:
        """Claim ``name`` (one namespace for labels, functions and data items).

        ``column`` defaults to the second token's (``label NAME``, ``func NAME``).
        """
        previous = self.syms.kinds.get(name)
        if previous is not None:
            if column is None:
                column = token_spans(split_comment(self.source_line(index)).code, 2)[1][0]
            other, line = previous
            where = f"on line {line}" if other == kind else f"as a {other} on line {line}"
            self.error(index, column, len(name), f"{kind} {show_token(name)} is already defined {where}",
                       "every label, function and data item needs its own name")
            return False
        self.syms.kinds[name] = (kind, index + 1)
        return True

    def define_code_name(self, index: int, line: str, toks: list[str], address: int) -> None:
        """``label NAME`` and ``func NAME``: both name the next code address."""
        head = toks[0]
        if len(toks) < 2:
            self.error(index, len(line.rstrip()), 1, f"'{head}' needs a name", f"write '{head} NAME'")
            return
        name = toks[1]
        if not is_name(name):
            hint = "names start with a letter, '_', '.' or '$'"
            if name.startswith("@"):
                hint = f"'@' is only used when referring to a name: {show_token(head + ' ' + name[1:])}"
            self.error_at_token(index, line, 1, f"{show_token(name)} is not a valid {head} name", hint)
            return
        self.extra_tokens_warning(index, line, toks, 2)
        kind = "label" if head == "label" else "function"
        if not self.define(index, name, kind):
            return
        if kind == "label":
            self.syms.labels[name] = address
        else:
            self.syms.functions[name] = len(self.function_addresses)
            self.function_addresses.append(address)

    def section(self, index: int, line: str, toks: list[str], in_text: bool, address: int) -> bool:
        """``section text|data``; returns whether the text section is now active."""
        if len(toks) < 2:
            self.error(index, len(line.rstrip()), 1, "'section' needs 'text' or 'data'")
            return in_text
        kind = toks[1]
        if kind == "text":
            in_text = True
        elif kind == "data":
            in_text = False
            self.last_data_section_address = address
        else:
            import difflib  # (only for a suggestion: not on the import path)
            close = difflib.get_close_matches(kind.lower(), ["text", "data"], n=1)
            self.error_at_token(index, line, 1, f"unknown section {show_token(kind)}: expected 'text' or 'data'",
                                f"did you mean 'section {close[0]}'?" if close else None)
            return in_text
        self.extra_tokens_warning(index, line, toks, 2)
        return in_text

    def extra_tokens_warning(self, index: int, line: str, toks: list[str], used: int) -> None:
        """Upstream ignores trailing words on directives; say so instead of failing."""
        if len(toks) > used:
            spans = token_spans(line, used + 1)
            column = spans[used][0]
            self.warn(index, column, len(line.rstrip()) - column,
                      f"text after {show_token(' '.join(toks[:used]))} is ignored",
                      "start comments with ';' or '#'")

    def unknown_mnemonic(self, index: int, line: str, toks: list[str]) -> None:
        head = toks[0]
        hint = None
        if head.lower() in OPCODES:
            hint = f"mnemonics are lowercase: '{head.lower()}'"
        elif head.endswith(":") and is_name(head[:-1]):
            hint = f"labels are written 'label {head[:-1]}'"
        elif looks_like_item(toks):
            hint = "data items belong in a data section: put 'section data' before them"
        else:
            hint = lambda: _suggest_keyword(head)   # computed only if shown
        self.error_at_token(index, line, 0, f"unknown mnemonic {show_token(head)}", hint)

    # --- pass 2: encoding -------------------------------------------------------------

    def encode(self) -> None:
        """Encode the instructions layout left pending, now that every name is known.

        The compiled ``Scanner`` (if built) encodes those it can first; the
        rest, among them every one that needs a diagnostic, are done here in
        their order.
        """
        syms = self.syms
        code = self.code
        cache: dict[str, bytes] = {}         # line -> its encoding (no diagnostic)
        lines = memoryview(self.pending_lines).cast("I")
        offsets = memoryview(self.pending_offsets).cast("Q")
        text = self.pending_text
        pending = zip(lines, offsets, text)
        if self.scan is not None:
            rest = self.scan.encode_pending()
            if not rest:
                self.pending_text = []
                return                       # (and the Python encoders are never imported)
            pending = ((lines[k], offsets[k], text[k]) for k in rest)
        from .encoding import ENCODERS as encoders

        for index, offset, line in pending:
            encoded = cache.get(line)
            if encoded is None:
                encoded = None
                if not ('"' in line or ";" in line or "#" in line):
                    toks = line.split(None, HEAD_TOKENS)
                    entry = encoders[toks[0]]
                    if entry[4] and len(toks) == entry[1] + 1:   # (no lint, no count to report)
                        try:
                            encoded = entry[2](toks, syms)
                        except LiteralError:
                            pass
                if encoded is not None:
                    if len(cache) < CACHE_LIMIT:
                        cache[line] = encoded
                else:
                    encoded, reusable = self.encode_line(index, line, syms)
                    if reusable and len(cache) < CACHE_LIMIT:
                        cache[line] = encoded
            code[offset:offset + len(encoded)] = encoded
        self.pending_text = []

    def encode_line(self, index: int, line: str, syms: SymbolTable) -> tuple[bytes, bool]:
        """Pass 2 for one line: its bytes (b"" if it is wrong: the diagnostic is recorded),
        and whether another line of the same text gets the same bytes and no diagnostic."""
        from .encoding import ENCODERS, LINTS, locate_bad_operand

        self.chunk_base, self.chunk_lines = index, [line]     # the diagnostics' source line
        commented = '"' in line or ";" in line or "#" in line
        if commented:
            line = split_comment(line).code
        toks = line.split(None, HEAD_TOKENS)
        op, count, encoder = ENCODERS[toks[0]][:3]
        exact = len(toks) == count + 1
        if not exact:
            toks = self.fix_operand_count(index, op, count, toks)
            if toks is None:
                return b"", False
        try:
            encoded = encoder(toks, syms)
        except LiteralError:
            position, exc = locate_bad_operand(op, toks, syms)
            self.error_at_token(index, self.code_of(index), position, exc.message, exc.hint)
            return b"", False
        lint = LINTS.get(op.mnemonic)
        if lint is not None:
            found = lint(toks, syms)
            if found is not None:
                column, token = token_spans(self.code_of(index), found[0] + 1)[found[0]]
                self.warn(index, column, len(token), found[1])
        return encoded, exact and not commented and lint is None

    def code_of(self, index: int) -> str:
        """The comment-free code of line ``index`` (for columns of error tokens)."""
        return split_comment(self.source_line(index)).code

    def fix_operand_count(self, index: int, op, count: int, toks: list[str]) -> list[str] | None:
        """Report a wrong operand count; returns the tokens to encode anyway, or None."""
        from .encoding import LENIENT_EXTRA_OPERANDS, operand_summary

        code = self.code_of(index)
        given = count_tokens(code) - 1            # toks holds only the head of a long line
        usage = operand_summary(op)
        what = "operand" if count == 1 else "operands"
        if given < count:
            self.error_at_token(index, code, len(toks),
                                f"'{op.mnemonic}' needs {count} {what}, found {given}",
                                f"usage: {usage}")
            return None
        if op.code in LENIENT_EXTRA_OPERANDS:
            # Upstream reads a fixed number of tokens here and ignores the rest.
            column = token_spans(code, count + 2)[count + 1][0]
            self.warn(index, column, len(code.rstrip()) - column,
                      f"text after the {count} {what} of '{op.mnemonic}' is ignored",
                      "start comments with ';' or '#'")
            return toks[:count + 1]
        if count == 0:
            message = f"'{op.mnemonic}' takes no operands, found {given}"
        else:
            message = f"'{op.mnemonic}' takes {count} {what}, found {given}"
        self.error_at_token(index, code, count + 1, message, f"usage: {usage}")
        return None


_SUGGESTED: dict[str, str | None] = {}   # word -> its suggestion (at most 4096, then afresh)


def _suggest_keyword(word: str) -> str | None:
    """"did you mean" for an unknown mnemonic or directive (the same typo is looked up once)."""
    if word in _SUGGESTED:
        return _SUGGESTED[word]
    hint = None
    if len(word) <= MAX_SUGGESTED_WORD:
        import difflib  # (only for a suggestion: not on the import path)
        close = difflib.get_close_matches(word, _KEYWORDS, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else None
    if len(_SUGGESTED) >= 4096:
        _SUGGESTED.clear()
    _SUGGESTED[word] = hint
    return hint
