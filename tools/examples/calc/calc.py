#!/usr/bin/env python3
"""calc: a tiny expression language compiled to voxvm assembly (.vvs); the worked example of docs/compiler-guide.md.

    def fact(n) = if n < 2 then 1 else n * fact(n - 1);
    let p = {3, 4};                       # a heap record of two integers
    print "fact(5) = ", fact(5), ", p.1 = ", p.1;

Usage: ``python tools/examples/calc/calc.py PROG.calc [-o OUT.vvs] [--run]``. Code generation is a
stack machine on voxvm's data stack: every expression pushes its value; locals (parameters,
``let``) live there too, addressed from a frame pointer in r30 with ``gsf``.
"""

from __future__ import annotations

import argparse
import re
import sys

TOKEN = re.compile(r'\s*(?:(#[^\n]*)|(\d+)|("[^"\n]*")|([A-Za-z_]\w*)|(==|!=|<=|>=|[-+*/%<>(){},;.=]))')
KEYWORDS = {"def", "let", "in", "print", "if", "then", "else"}
COMPARE = {"<": "jl", ">": "jg", "==": "jz", "!=": "jnz", "<=": "jle", ">=": "jge"}
ARITH = {"+": "iadd r1 r2", "-": "isub r1 r2", "*": "imul r1 r2", "/": "idiv r1 r1 r2", "%": "irem r1 r1 r2"}


class CompileError(Exception):
    pass


def tokenize(src: str) -> list[tuple[str, str, int]]:
    """(kind, text, line) triples: kind is num, str, name, kw or op."""
    tokens, pos, line = [], 0, 1
    while pos < len(src):
        m = TOKEN.match(src, pos)
        if m is None or m.end() == pos:
            if src[pos:].strip() == "":
                break
            raise CompileError(f"{line}: unexpected character {src[pos:].lstrip()[0]!r}")
        line += src.count("\n", pos, m.start(m.lastindex))
        kind = ("comment", "num", "str", "name", "op")[m.lastindex - 1]
        if kind != "comment":
            text = m.group(m.lastindex)
            tokens.append(("kw" if text in KEYWORDS else kind, text, line))
        line += src.count("\n", m.start(m.lastindex), m.end())
        pos = m.end()
    return tokens + [("eof", "", line)]


class Compiler:
    def __init__(self, src: str) -> None:
        self.toks, self.i = tokenize(src), 0
        self.funcs: list[str] = []
        self.data: list[str] = []
        self.labels = 0
        self.depth = 0                    # data-stack entries above the frame pointer, at this point
        self.arity: dict[str, int] = {}

    # ------------------------------------------------------------ helpers
    def peek(self) -> str:
        return self.toks[self.i][1]

    def take(self, expected: str | None = None) -> tuple[str, str, int]:
        tok = self.toks[self.i]
        if expected is not None and tok[1] != expected:
            raise CompileError(f"{tok[2]}: expected {expected!r}, found {tok[1] or 'end of file'!r}")
        self.i += 1
        return tok

    def label(self) -> str:
        self.labels += 1
        return f"L{self.labels}"

    def push(self, out: list[str], reg: str = "r1") -> None:
        out.append(f"    push {reg}")
        self.depth += 1

    def pop(self, out: list[str], reg: str) -> None:
        out.append(f"    pop {reg}")
        self.depth -= 1

    def local(self, out: list[str], slot: int) -> None:
        """r1 := the local at ``slot`` (counted from the frame pointer r30): ``gsf`` reads the stack."""
        out += [f"    uload r29 {slot}", "    movr r28 r30", "    uadd r28 r29", "    gsf r1 r28"]

    # ------------------------------------------------------------ statements
    def program(self) -> str:
        out: list[str] = ["section text", ".start", "    uload r30 0          ; main's frame starts at 0"]
        scope: dict[str, int] = {}
        while self.peek() != "":
            if self.peek() == "def":
                self.function()
            elif self.peek() == "let":                 # a local of main, for the rest of the program
                self.take()
                name = self.take()[1]
                self.take("=")
                scope[name] = self.depth
                self.expr(out, scope)
            else:
                self.take("print")
                while True:
                    self.expr(out, scope)
                    last = self.peek() != ","
                    self.pop(out, "r1")
                    out += ["    uload r2 1", f"    ncall {'0x01 r0      ; print' if last else '0x08 r0      ; put'}"]
                    if last:
                        break
                    self.take(",")
            self.take(";")
        out.append("    halt")
        return "\n".join(out + self.funcs + ["section data"] + self.data) + "\n"

    def function(self) -> None:
        self.take("def")
        name, params = self.take()[1], []
        self.take("(")
        while self.peek() != ")":
            params.append(self.take()[1])
            if self.peek() == ",":
                self.take()
        self.take(")")
        self.take("=")
        self.arity[name] = len(params)                  # known before the body: recursion
        saved, self.depth = self.depth, len(params)     # the arguments are the frame's first slots
        body = [f"func f_{name}"]
        self.expr(body, {p: k for k, p in enumerate(params)})
        self.funcs += body + ["    pop r0               ; the result", "    ret"]
        self.depth = saved

    # ------------------------------------------------------------ expressions (each pushes one value)
    def expr(self, out: list[str], scope: dict[str, int]) -> None:
        if self.peek() == "let":
            self.take()
            name = self.take()[1]
            self.take("=")
            slot = self.depth
            self.expr(out, scope)
            self.take("in")
            self.expr(out, {**scope, name: slot})
            self.pop(out, "r1")
            self.pop(out, "r29")                         # drop the let's value from under the result
            self.push(out, "r1")
        elif self.peek() == "if":
            self.take()
            other, end = self.label(), self.label()
            self.expr(out, scope)
            self.pop(out, "r1")
            out += ["    iload r2 0", "    icmp r1 r2", f"    jz @{other}"]
            self.take("then")
            self.expr(out, scope)
            out += [f"    jmp @{end}", f"label {other}"]
            self.depth -= 1                              # the else branch pushes the same one value
            self.take("else")
            self.expr(out, scope)
            out.append(f"label {end}")
        else:
            self.binary(out, scope, 0)

    LEVELS = (tuple(COMPARE), ("+", "-"), ("*", "/", "%"))

    def binary(self, out: list[str], scope: dict[str, int], level: int) -> None:
        if level == len(self.LEVELS):
            return self.postfix(out, scope)
        self.binary(out, scope, level + 1)
        while self.peek() in self.LEVELS[level]:
            op = self.take()[1]
            self.binary(out, scope, level + 1)
            self.pop(out, "r2")
            self.pop(out, "r1")
            if op in COMPARE:                            # the flags become 1 or 0
                yes = self.label()
                out += ["    icmp r1 r2", "    iload r1 1", f"    {COMPARE[op]} @{yes}", "    iload r1 0", f"label {yes}"]
            else:
                out.append(f"    {ARITH[op]}")
            self.push(out)

    def postfix(self, out: list[str], scope: dict[str, int]) -> None:
        self.primary(out, scope)
        while self.peek() == ".":                         # record field N: 8 bytes at 8*N
            self.take()
            self.pop(out, "r1")
            out += [f"    uload r3 {8 * int(self.take()[1])}", "    uadd r1 r3", "    uload r4 8",
                    "    uload r5 2           ; as int64", "    load r5 r1 r1 r4   ; load TYPE DEST PTR COUNT"]
            self.push(out)

    def primary(self, out: list[str], scope: dict[str, int]) -> None:
        kind, text, line = self.take()
        if kind == "num":
            out.append(f"    iload r1 {text}")
            self.push(out)
        elif kind == "str":                              # a str data item; its StrAddr is the value
            self.data.append(f"    s{len(self.data)} str {text}")
            out.append(f"    dsload r1 s{len(self.data) - 1} 0")
            self.push(out)
        elif text == "-":
            self.postfix(out, scope)
            self.pop(out, "r2")
            out.append("    ineg r1 r2")
            self.push(out)
        elif text == "(":
            self.expr(out, scope)
            self.take(")")
        elif text == "{":                                # a heap record, kept on the stack (a GC root)
            slot, count = self.depth, 0
            out.append("    alloc r1 0")                 # size patched below, once the fields are counted
            at = len(out) - 1
            self.push(out)
            while self.peek() != "}":
                self.expr(out, scope)
                self.pop(out, "r2")
                self.local(out, slot)
                out += [f"    uload r3 {8 * count}", "    uadd r1 r3", "    uload r4 8",
                        "    store r1 r2 r4       ; store PTR VALUE COUNT"]
                count += 1
                if self.peek() == ",":
                    self.take()
            self.take("}")
            out[at] = f"    alloc r1 {8 * max(count, 1)}"
        elif kind == "name" and self.peek() == "(":
            self.call(out, scope, text, line)
        elif kind == "name" and text in scope:
            self.local(out, scope[text])
            self.push(out)
        else:
            raise CompileError(f"{line}: unknown name {text!r}" if kind == "name" else f"{line}: unexpected {text!r}")

    def call(self, out: list[str], scope: dict[str, int], name: str, line: int) -> None:
        self.take("(")
        self.push(out, "r30")                            # the caller's frame pointer
        base, args = self.depth, 0
        while self.peek() != ")":
            self.expr(out, scope)
            args += 1
            if self.peek() == ",":
                self.take()
        self.take(")")
        if name not in self.arity:
            raise CompileError(f"{line}: unknown function {name!r}")
        if self.arity[name] != args:
            raise CompileError(f"{line}: {name} takes {self.arity[name]} arguments, not {args}")
        out += [f"    uload r29 {base}", "    movr r28 r30", "    uadd r28 r29",
                "    movr r30 r28         ; the callee's frame: its arguments", f"    call @f_{name}"]
        for _ in range(args):
            self.pop(out, "r29")
        self.pop(out, "r30")
        self.push(out, "r0")


def main(argv: list[str]) -> int:
    # A compiler's own errors are one line each and an exit status, like voxasm's (semantics.md §5).
    parser = argparse.ArgumentParser(prog="calc.py", description="Compile a .calc program to .vvs.")
    parser.add_argument("source", metavar="PROG.calc")
    parser.add_argument("-o", dest="output", metavar="OUT.vvs", help="write the .vvs here (default: stdout)")
    parser.add_argument("--run", action="store_true", help="run it through the voxvm API (docs/api.md)")
    args = parser.parse_args(argv)
    src_path = args.source
    try:
        with open(src_path, encoding="utf-8") as source:
            vvs = Compiler(source.read()).program()
    except CompileError as error:
        line, _, message = str(error).partition(": ")
        print(f"{src_path}:{line}: error: {message}", file=sys.stderr)
        return 1
    except (OSError, UnicodeDecodeError) as error:
        print(f"calc.py: error: {src_path}: cannot read: {getattr(error, 'strerror', None) or error}", file=sys.stderr)
        return 74
    if args.output is not None:
        try:
            with open(args.output, "w", encoding="utf-8") as out:
                out.write(vvs)
        except OSError as error:
            print(f"calc.py: error: {args.output}: cannot write: {error.strerror or error}", file=sys.stderr)
            return 74
    elif not args.run:
        sys.stdout.write(vvs)
    if args.run:                                          # through the Python API (docs/api.md)
        import voxasm, voxvm

        # a Program keeps the function names and lines, so a trap says where (not func#0)
        program = voxasm.assemble_program(vvs, src_path + ".vvs")
        result = voxvm.Machine(program).run(stdin=sys.stdin.buffer)
        sys.stdout.buffer.write(result.stdout)
        sys.stderr.buffer.write(result.stderr)
        return result.exit_status
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
