"""The two-pass assembler: ``.vvs`` text -> ``voxvm.program.Program``.

Pass 1 (layout) reads every line once: it strips comments, classifies the
line (directive, instruction, data item), gives every instruction its
address from the ISA table size, defines labels, functions and data labels,
and encodes data items and the instructions whose operands cannot name a
symbol (registers and immediates: most lines). Pass 2 (encoding) turns the
remaining instructions' operand tokens (``@label``, ``@function``, data
labels) into bytes against the complete symbol table, so forward references
work; it also produces every per-operand diagnostic. Data from every ``section data``
is merged into one segment placed after all the code (semantics.md §3
item 21). Errors never stop the run: each becomes a ``Diagnostic`` and a bad
instruction still occupies its table size, so later addresses stay sensible;
at the end all errors are raised together as one ``AssemblyError``.

Pure: no I/O, no global state; safe to call many times (the disassembler's
round-trip tests do).
"""

from __future__ import annotations

import difflib
import functools
import gc

from voxvm.isa import BY_MNEMONIC
from voxvm.program import Program, Symbols

from .data import ITEM_HEADER_SIZE, MAX_DATA_PAYLOAD, ItemError, looks_like_item, parse_item
from .diagnostics import AssemblyError, Diagnostic
from .encoding import (
    ENCODERS,
    LENIENT_EXTRA_OPERANDS,
    LINTS,
    MAX_SUGGESTED_WORD,
    SymbolTable,
    locate_bad_operand,
    operand_summary,
)
from .literals import LiteralError, is_name, show_token
from .source import Split, count_tokens, decode, split_comment, token_spans

_DIRECTIVES = ("section", "func", "label", ".start")
_KEYWORDS = sorted(list(BY_MNEMONIC) + list(_DIRECTIVES))
# Tokens of a line that layout ever looks at: the mnemonic, the most operands of any
# instruction, and one more to notice that there are too many.
HEAD_TOKENS = 1 + max(len(op.operands) for op in BY_MNEMONIC.values()) + 1


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
    # The run allocates hundreds of thousands of small acyclic objects (token
    # lists, tuples, bytes); the cyclic GC would scan them again and again for
    # nothing (about a third of the run time). Pausing it is process-wide state,
    # so only on request.
    paused = pause_gc and gc.isenabled()
    if paused:
        gc.disable()
    try:
        return _Assembler(path).run(decode(source, path), warnings)
    finally:
        if paused:
            gc.enable()


class _Assembler:
    """The state of one assembly run (one file)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: list[str] = []
        self.errors: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        self.syms = SymbolTable()

    # --- diagnostics -------------------------------------------------------------------

    def _diag(self, sink: list, index: int, column: int, length: int, message: str,
              hint: str | None, severity: str) -> None:
        sink.append(Diagnostic(self.path, index + 1, column + 1, message,
                               source_line=self.lines[index] if index < len(self.lines) else "",
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

    def run(self, text: str, warnings: list[Diagnostic] | None) -> Program:
        self.lines = lines = text.split("\n")
        if "\x00" in text:
            self._reject_nul_lines()
        self.layout(lines)
        self.encode()
        self.check_code_addresses()
        code = self.code
        if not self.code_lines and not self.errors:
            # semantics.md and upstream.md are silent; an image without code cannot run (docs/vvs-language.md).
            self.errors.append(Diagnostic(
                self.path, 1, 1, "no code to assemble: the file has no instructions",
                hint="a program needs at least one instruction, e.g. 'halt'"))
        self.warnings.sort(key=lambda d: (d.line, d.column))
        if warnings is not None:
            warnings.extend(self.warnings)
        if self.errors:
            raise AssemblyError(self.errors, self.path, self.warnings)
        image = b"".join(code) + b"".join(self.data_chunks)
        code_size = self.code_size
        if self.data_chunks:
            data_base = code_size
        else:
            # No data: what upstream writes (address of the last `section
            # data` line, 0 without one), so such files stay byte-identical.
            data_base = self.last_data_section_address
        lines_table = tuple(self.code_lines) + tuple(
            (code_size + offset, line) for offset, line in self.data_lines)
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
        if not self.code_lines:
            return                      # "no code to assemble" says it already
        report = self.warn if self.data_chunks else self.error
        where = "it names the start of the data" if self.data_chunks else "nothing follows it"
        if self.start_line is not None and self.entry == end:
            index = self.start_line - 1
            report(index, self.lines[index].find(".start"), 6,
                   f"'.start' is not followed by any instruction: {where}",
                   "put '.start' before the first instruction to run")
        for name, number in self.syms.functions.items():
            if self.function_addresses[number] == end:
                index = self.syms.kinds[name][1] - 1
                spans = token_spans(split_comment(self.lines[index]).code, 2)
                report(index, spans[1][0], len(name),
                       f"function {show_token(name)} has no instructions: {where}",
                       "a function needs at least one instruction, e.g. 'ret'")

    def _reject_nul_lines(self) -> None:
        """NUL outside a string literal or comment means a binary file or corruption.

        Those lines are reported and blanked; a NUL character inside a ``str``
        literal is text like any other (upstream stores it).
        """
        for index, line in enumerate(self.lines):
            if "\x00" not in line:
                continue
            code, q1, q2 = split_comment(line)
            column = code.find("\x00")
            if q1 >= 0 and q2 > q1:
                outside = code[:q1] + "\x01" * (q2 + 1 - q1) + code[q2 + 1:]
                column = outside.find("\x00")
            if column >= 0:
                self.error(index, column, 1, "NUL byte in the source", "is this a binary file?")
                self.lines[index] = ""

    # --- pass 1: layout ---------------------------------------------------------------

    def layout(self, lines: list[str]) -> None:
        """Addresses, symbols and data; instructions without symbols are encoded right away.

        ``self.code`` gets one bytes object per instruction, in order; the
        ones that name a symbol (or need a diagnostic) are left empty and
        listed in ``self.pending`` for pass 2.
        """
        syms = self.syms
        encoders = ENCODERS
        self.code = code = []
        code_append = code.append
        self.pending = pending = []
        pending_append = pending.append
        self.code_lines = code_lines = []
        line_append = code_lines.append
        self.data_chunks: list[bytes] = []
        self.data_lines: list[tuple[int, int]] = []
        self.function_addresses: list[int] = []
        self.entry = 0
        self.start_line: int | None = None
        self.last_data_section_address = 0
        data_offset = data_payload = 0
        address = 0
        in_text = True  # every file starts in the text section (upstream bug 37 fixed)
        for index, line in enumerate(lines):
            if '"' in line or ";" in line or "#" in line:
                split = split_comment(line)
                line = split.code
            else:
                split = None
            # Only the head of a line is cut into tokens: a line never needs more than
            # HEAD_TOKENS of them, and splitting all of a line of millions of words
            # would cost ~50 bytes a word (docs/resource-limits.md). A longer line's
            # last token holds its unsplit rest, so "too many" is still seen.
            toks = line.split(None, HEAD_TOKENS)
            if not toks:
                continue
            head = toks[0]
            if in_text:
                entry = encoders.get(head)
                if entry is not None and split is None:
                    # The hot path: an ordinary instruction line.
                    line_append((address, index + 1))
                    address += entry[3]
                    if entry[4] and len(toks) == entry[1] + 1:
                        try:
                            code_append(entry[2](toks, syms))
                            continue
                        except LiteralError:
                            pass  # pass 2 reports it
                    pending_append((len(code), index, entry, toks))
                    code_append(b"")
                    continue
            if head in _DIRECTIVES:
                if split is not None and split.quote_start >= 0:
                    self.error(index, split.quote_start, 1, f"a '{head}' line takes no string literal")
                    continue
                if head != "section" and not in_text:
                    # Data goes after all the code, so a code address named
                    # here is that of the next instruction, not of the data.
                    self.warn(index, line.find(head), len(head),
                              f"'{head}' in a data section refers to the next instruction's address",
                              "put it after 'section text'")
                if head == "label" or head == "func":
                    self.define_code_name(index, line, toks, address)
                elif head == ".start":
                    self.extra_tokens_warning(index, line, toks, 1)
                    if self.start_line is not None:
                        self.warn(index, line.find(".start"), 6,
                                  f"'.start' given again (first on line {self.start_line}); the last one wins")
                    self.entry = address
                    self.start_line = index + 1
                else:
                    in_text = self.section(index, line, toks, in_text, address)
                continue
            if in_text:
                entry = encoders.get(head)
                if entry is not None:  # an instruction with a comment or a stray string
                    line_append((address, index + 1))
                    address += entry[3]
                    if split.quote_start >= 0:
                        self.error(index, split.quote_start, 1, "string literal in an instruction",
                                   "strings belong in 'section data' items: NAME str \"text\"")
                    else:
                        pending_append((len(code), index, entry, toks))
                        code_append(b"")
                    continue
                self.unknown_mnemonic(index, line, toks)
                continue
            # data section
            if head in encoders and not looks_like_item(toks):
                self.error_at_token(index, line, 0, f"instruction {show_token(head)} in a data section",
                                    "put 'section text' before code")
                continue
            try:
                item = parse_item(split or Split(line))
            except ItemError as exc:
                self.error(index, exc.column, exc.length, exc.message, exc.hint)
                continue
            payload = len(item.encoded) - ITEM_HEADER_SIZE
            if data_payload + payload > MAX_DATA_PAYLOAD:
                self.error(index, item.name_column, len(item.name),
                           f"data item {show_token(item.name)} takes the data items past "
                           f"{MAX_DATA_PAYLOAD >> 20} MiB ({data_payload} bytes before it, {payload} in it)",
                           "all items together may hold at most as much as one item")
                continue
            data_payload += payload
            for column, length, message in item.warnings:
                self.warn(index, column, length, message)
            if self.define(index, item.name, "data item", item.name_column):
                syms.data[item.name] = data_offset
            self.data_chunks.append(item.encoded)
            self.data_lines.append((data_offset, index + 1))
            data_offset += len(item.encoded)
        self.code_size = address

    def define(self, index: int, name: str, kind: str, column: int | None = None) -> bool:
        """Claim ``name`` (one namespace for labels, functions and data items).

        ``column`` defaults to the second token's (``label NAME``, ``func NAME``).
        """
        previous = self.syms.kinds.get(name)
        if previous is not None:
            if column is None:
                column = token_spans(split_comment(self.lines[index]).code, 2)[1][0]
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
        if head.lower() in ENCODERS:
            hint = f"mnemonics are lowercase: '{head.lower()}'"
        elif head.endswith(":") and is_name(head[:-1]):
            hint = f"labels are written 'label {head[:-1]}'"
        elif looks_like_item(toks):
            hint = "data items belong in a data section: put 'section data' before them"
        else:
            hint = functools.partial(_suggest_keyword, head)   # computed only if shown
        self.error_at_token(index, line, 0, f"unknown mnemonic {show_token(head)}", hint)

    # --- pass 2: encoding -------------------------------------------------------------

    def encode(self) -> None:
        """Encode the instructions layout left pending, now that every name is known."""
        syms = self.syms
        lints = LINTS
        code = self.code
        for slot, index, (op, count, encoder, _, _), toks in self.pending:
            if len(toks) != count + 1:
                toks = self.fix_operand_count(index, op, count, toks)
                if toks is None:
                    continue
            try:
                code[slot] = encoder(toks, syms)
            except LiteralError:
                position, exc = locate_bad_operand(op, toks, syms)
                self.error_at_token(index, self.code_of(index), position, exc.message, exc.hint)
                continue
            if op.mnemonic in lints:
                found = lints[op.mnemonic](toks, syms)
                if found is not None:
                    column, token = token_spans(self.code_of(index), found[0] + 1)[found[0]]
                    self.warn(index, column, len(token), found[1])

    def code_of(self, index: int) -> str:
        """The comment-free code of line ``index`` (for columns of error tokens)."""
        return split_comment(self.lines[index]).code

    def fix_operand_count(self, index: int, op, count: int, toks: list[str]) -> list[str] | None:
        """Report a wrong operand count; returns the tokens to encode anyway, or None."""
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


@functools.lru_cache(maxsize=4096)
def _suggest_keyword(word: str) -> str | None:
    """"did you mean" for an unknown mnemonic or directive (the same typo is looked up once)."""
    if len(word) > MAX_SUGGESTED_WORD:
        return None
    close = difflib.get_close_matches(word, _KEYWORDS, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
