"""FFI: ``--native-configs`` loading, typed signatures, and the ctypes calls.

Owns everything about foreign functions that is not the C call itself
(docs/ffi.md is the guide; upstream.md §9 upstream's behaviour, semantics.md
§3.19-§3.20 the fixes):

* reading the configs (upstream's TOML schema plus ``signature``) and every
  check on them: a malformed config is a ``ConfigError`` (one ``voxvm:``
  line naming the file and the key, exit status 65) before anything runs;
* the signature grammar (``parse_signature``) and the type numbers
  (``FfiType``), which tools/gen_ffi_shapes.py writes into the C core;
* binding: opening each library with the platform loader, resolving every
  symbol once. A library that does not load, or a symbol that is missing or
  is not a function, is one warning line; its codes stay unmapped
  (NativeFault when called) and no other code moves;
* the per-code Python handlers (ctypes), which the reference backend always
  uses and the compiled backend uses only when its C entry declines a call
  (a bad pointer argument, whose diagnostic must come from the host);
* ``FfiRuntime.install``: handlers into ``HostIO.extra_natives``, and, on a
  core that has a C native table (``install_ffi``), the resolved function
  pointer into that table, so that the call runs in the nogil loop
  (csrc/vv_ffi.h) with no Python per call.
"""

from __future__ import annotations

import ctypes
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import ExitStatus, InputError, UsageError, shown_name
from ..numbered import Numbered
from ..tags import VALID_TAGS, Exc, Tag
from ..values import as_f64, as_i64, as_u64, bits_from_f64
from .io import quoted
from .registry import FAMILY_OF, NativeFailure

MAX_ARGC = 31                   # r1..r31 (semantics.md §3.19)
MAX_INT_ARGS = 6                # typed calls: every argument in a register (x86-64 SysV: 6 GPRs)
MAX_F64_ARGS = 8                # ... and 8 vector registers
MAX_CODE = 0xFFFF
# Codes no config may take: the built-ins (upstream.md §8.1, and put, semantics.md §7.2) and the concurrency
# natives (semantics.md §7.1). Upstream lets a config name them and then never calls
# the library; here the config is refused, so nobody wonders why a function is silent.
CONCURRENCY_CODES = frozenset(range(0x30, 0x3A))
BUILTIN_CODES = frozenset(FAMILY_OF) - CONCURRENCY_CODES
# The field that names the library, per running OS (semantics.md §3.20).
LIBRARY_KEYS = {"linux": "lib_filename_linux", "darwin": "lib_filename_macos", "win32": "lib_filename_win"}

MASK64 = (1 << 64) - 1


class FfiType(Numbered):
    """Types of a typed signature; the numbers are shared with csrc/vv_ffi.h (generated)."""

    VOID = 0
    I8 = 1
    I16 = 2
    I32 = 3
    I64 = 4
    U8 = 5
    U16 = 6
    U32 = 7
    U64 = 8
    F64 = 9
    PTR = 10


TYPE_BY_NAME = {t.name.lower(): t for t in FfiType}
_INT_WIDTH = {FfiType.I8: (8, True), FfiType.I16: (16, True), FfiType.I32: (32, True),
              FfiType.I64: (64, True), FfiType.U8: (8, False), FfiType.U16: (16, False),
              FfiType.U32: (32, False), FfiType.U64: (64, False)}
_CTYPES = {FfiType.VOID: None, FfiType.I8: ctypes.c_int8, FfiType.I16: ctypes.c_int16,
           FfiType.I32: ctypes.c_int32, FfiType.I64: ctypes.c_int64, FfiType.U8: ctypes.c_uint8,
           FfiType.U16: ctypes.c_uint16, FfiType.U32: ctypes.c_uint32, FfiType.U64: ctypes.c_uint64,
           FfiType.F64: ctypes.c_double, FfiType.PTR: ctypes.c_void_p}
_SIGNATURE_RE = re.compile(r"^\s*([a-z0-9]+)\s*\((.*)\)\s*$", re.DOTALL)   # blanks include newlines


@dataclass(frozen=True)
class Signature:
    """``RET(ARG, ...)``: the C prototype of a plain foreign function."""

    ret: FfiType
    args: tuple[FfiType, ...]

    @property
    def int_args(self) -> int:
        return sum(1 for t in self.args if t != FfiType.F64)

    @property
    def f64_args(self) -> int:
        return sum(1 for t in self.args if t == FfiType.F64)

    def __str__(self) -> str:
        return f"{self.ret.name.lower()}({','.join(t.name.lower() for t in self.args)})"


def parse_signature(text: str) -> Signature:
    """Parse ``"f64(f64)"``, ``"u64(ptr,u64)"``, ``"void()"`` …; ValueError says what is wrong.

    Grammar (docs/ffi.md): ``RET "(" [ARG {"," ARG}] ")"``, blanks anywhere
    between tokens; RET is ``void`` or a value type, ARG a value type or ``ptr``;
    value types ``i8 i16 i32 i64 u8 u16 u32 u64 f64``. At most 6 integer-class
    arguments (integers and ``ptr``) and 8 ``f64`` arguments.
    """
    match = _SIGNATURE_RE.match(text)
    if match is None:
        raise ValueError(f"{quoted(text)} is not RET(ARG, ...), e.g. \"f64(f64)\"")
    ret_name, inner = match.group(1), match.group(2).strip()
    ret = TYPE_BY_NAME.get(ret_name)
    if ret is None or ret == FfiType.PTR:
        why = " (a result cannot be a ptr: a host pointer is no VM address)" if ret == FfiType.PTR else ""
        raise ValueError(f"result type '{ret_name}' is not one of void, i8, i16, i32, i64, u8, u16, "
                         f"u32, u64, f64{why}")
    args = []
    if inner:
        for position, name in enumerate((part.strip() for part in inner.split(",")), 1):
            arg = TYPE_BY_NAME.get(name)
            if arg is None or arg == FfiType.VOID:
                raise ValueError(f"argument {position} {quoted(name)} is not one of i8, i16, i32, i64, u8, "
                                 "u16, u32, u64, f64, ptr")
            args.append(arg)
    signature = Signature(ret, tuple(args))
    if signature.int_args > MAX_INT_ARGS or signature.f64_args > MAX_F64_ARGS:
        raise ValueError(f"{quoted(text)} has {signature.int_args} integer/ptr and {signature.f64_args} f64 "
                         f"arguments; at most {MAX_INT_ARGS} and {MAX_F64_ARGS} are supported")
    return signature


class ConfigError(InputError):
    """A malformed FFI config: ``voxvm: error: FILE: KEY: message``, exit status 65."""

    def __init__(self, path: str, key: str | None, message: str) -> None:
        super().__init__(f"--native-configs: {path}: {key + ': ' if key else ''}{message}")
        self.path, self.key, self.message = path, key, message


class ConfigReadError(ConfigError):
    """A config file or folder that is missing or cannot be read: the same one line, exit
    status 74, as for any input that cannot be read (semantics.md §5)."""

    exit_status = ExitStatus.IOERR


@dataclass(frozen=True)
class FfiFunction:
    """One ``[functions.KEY]`` entry."""

    config: str                      # the config file, as shown in messages
    key: str                         # "functions.add"
    symbol: str                      # exported C symbol
    code: int                        # ncall code
    argc: int                        # arguments r1..r(argc)
    signature: Signature | None      # None: upstream's VMValue ABI

    @property
    def label(self) -> str:
        return f"{self.symbol} ({self.config})"


@dataclass(frozen=True)
class FfiConfig:
    """One config file: its library and functions."""

    path: str
    name: str
    library_key: str                 # the field used on this OS
    library: str                     # its value, as written
    functions: tuple[FfiFunction, ...]


def library_key(platform: str = sys.platform) -> str | None:
    """The library field for ``platform`` (``sys.platform``), None for an OS upstream does not know."""
    for prefix, key in LIBRARY_KEYS.items():
        if platform.startswith(prefix):
            return key
    return None


def config_files(target: str) -> list[Path]:
    """The configs ``--native-configs=TARGET`` names: every ``*.toml`` of a folder, or one file."""
    if not target:
        raise UsageError("--native-configs: an empty path (give a folder of *.toml files or one file)")
    path = Path(target)
    if path.is_dir():
        try:
            files = sorted(p for p in path.iterdir() if p.suffix == ".toml")
        except OSError as exc:
            raise ConfigReadError(target, None, f"cannot list the folder: {exc.strerror or exc}") from None
        files = [file for file in files if not file.is_dir()]      # subfolders are ignored
        for file in files:            # a dangling link is not skipped unseen
            if not file.is_file():
                raise ConfigReadError(str(file), None, "not a regular file" if file.exists()
                                      else "no such file (a dangling symbolic link?)")
        return files
    if path.is_file():
        return [path]
    raise ConfigReadError(target, None, "not a regular file or a folder" if path.exists()
                          else "no such file or folder")


def _expect(table: dict, key: str, kind: type, path: str, where: str, required: bool = True):
    full = f"{where}.{key}" if where else key
    if key not in table:
        if required:
            raise ConfigError(path, full, f"missing ({_KIND_NAMES[kind]} is required)")
        return None
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ConfigError(path, full, f"must be {_KIND_NAMES[kind]}, not {_toml_kind(value)}")
    return value


_KIND_NAMES = {str: "a string", int: "an integer", dict: "a table"}


def _toml_kind(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the float {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"


def parse_config(path: str, data: bytes, platform: str = sys.platform) -> FfiConfig:
    """Check one config's bytes against the schema; ConfigError on the first problem."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, f"not UTF-8 text (byte offset {exc.start}); "
                                      "is this a library rather than its .toml?") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"malformed TOML: {exc}") from None
    name = _expect(table, "name", str, path, "")
    _expect(table, "version", str, path, "", required=False)
    for key in LIBRARY_KEYS.values():
        _expect(table, key, str, path, "", required=False)
    lib_key = library_key(platform)
    if lib_key is None:
        raise ConfigError(path, None, f"no library field for this OS ({platform})")
    library = _expect(table, lib_key, str, path, "")
    if not library.strip() or "\0" in library:
        raise ConfigError(path, lib_key, "must name a library file")
    functions = []
    for key, entry in (_expect(table, "functions", dict, path, "", required=False) or {}).items():
        where = f"functions.{key}"
        if not isinstance(entry, dict):
            raise ConfigError(path, where, f"must be a table, not {_toml_kind(entry)}")
        symbol = _expect(entry, "name", str, path, where)
        if not symbol or "\0" in symbol:
            raise ConfigError(path, f"{where}.name", "must name an exported C symbol")
        code = _expect(entry, "ncall_code", int, path, where)
        if not 0 <= code <= MAX_CODE:
            raise ConfigError(path, f"{where}.ncall_code", f"{code} is outside 0..0xffff")
        if code in BUILTIN_CODES:
            raise ConfigError(path, f"{where}.ncall_code", f"0x{code:x} is a built-in native "
                              "(0x01-0x08, 0x10-0x16, 0x20-0x25 are reserved)")
        if code in CONCURRENCY_CODES:
            raise ConfigError(path, f"{where}.ncall_code", f"0x{code:x} is a concurrency native "
                              "(0x30-0x39 are reserved)")
        if ("argc" in entry) == ("signature" in entry):
            raise ConfigError(path, where, "give exactly one of argc (upstream's VMValue ABI) and "
                                           "signature (a plain C prototype)")
        signature = None
        if "argc" in entry:
            argc = _expect(entry, "argc", int, path, where)
            if not 0 <= argc <= MAX_ARGC:
                raise ConfigError(path, f"{where}.argc", f"{argc} is outside 0..{MAX_ARGC} "
                                                         "(arguments are r1..r31)")
        else:
            try:
                signature = parse_signature(_expect(entry, "signature", str, path, where))
            except ValueError as exc:
                raise ConfigError(path, f"{where}.signature", str(exc)) from None
            argc = len(signature.args)
        functions.append(FfiFunction(path, where, symbol, code, argc, signature))
    return FfiConfig(path, name, lib_key, library, tuple(functions))


def read_configs(target: str, platform: str = sys.platform) -> list[FfiConfig]:
    """Every config ``target`` names, checked; a code given twice is a ConfigError."""
    configs = []
    seen: dict[int, FfiFunction] = {}
    for file in config_files(target):
        shown = str(file)
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise ConfigReadError(shown, None, f"cannot read: {exc.strerror or exc}") from None
        config = parse_config(shown, data, platform)
        for function in config.functions:
            other = seen.get(function.code)
            if other is not None:
                raise ConfigError(shown, f"{function.key}.ncall_code",
                                  f"0x{function.code:x} is already taken by {other.key} "
                                  f"({other.symbol}) in {other.config}")
            seen[function.code] = function
        configs.append(config)
    return configs


# ---------------------------------------------------------------------- binding


def resolve_library(config_path: str, library: str) -> tuple[str | None, str]:
    """Where to load ``library`` from: ``(path, "")`` or ``(None, why not)``.

    Relative paths: next to the config first, then the working directory
    (semantics.md §3.20); a bare name found in neither goes to the platform
    loader's own search (``libm.so.6``).
    """
    path = Path(library)
    if path.is_absolute():
        return str(path), ""
    near = Path(config_path).parent / path
    here = Path.cwd() / path
    for candidate in (near, here):
        if candidate.exists():
            return str(candidate), ""
    if len(path.parts) == 1:
        return library, ""
    return None, f"not found next to the config ({near}) or in the working directory ({here})"


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


class _ElfSym(ctypes.Structure):          # Elf64_Sym
    _fields_ = [("st_name", ctypes.c_uint32), ("st_info", ctypes.c_ubyte), ("st_other", ctypes.c_ubyte),
                ("st_shndx", ctypes.c_uint16), ("st_value", ctypes.c_uint64), ("st_size", ctypes.c_uint64)]


_STT_NAMES = {0: "an untyped symbol", 1: "a data object", 3: "a section", 4: "a file", 5: "common data",
              6: "thread-local data"}
_STT_FUNC, _STT_GNU_IFUNC, _RTLD_DL_SYMENT = 2, 10, 1


def _symbol_kind(address: int) -> str | None:
    """What the symbol at ``address`` is when it is known and not a function, else None.

    glibc's ``dladdr1`` gives the ELF symbol table entry; elsewhere (or when
    the address is an ifunc's resolved body, which has no exported symbol of
    its own) nothing is known and the symbol is taken as a function.
    """
    if not sys.platform.startswith("linux") or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    try:
        dladdr1 = ctypes.CDLL(None).dladdr1
    except (AttributeError, OSError):
        return None
    dladdr1.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo), ctypes.POINTER(ctypes.c_void_p),
                        ctypes.c_int]
    dladdr1.restype = ctypes.c_int
    info, extra = _DlInfo(), ctypes.c_void_p()
    if not dladdr1(address, ctypes.byref(info), ctypes.byref(extra), _RTLD_DL_SYMENT) or not extra.value:
        return None
    if info.dli_saddr != address:
        return None
    kind = ctypes.cast(extra, ctypes.POINTER(_ElfSym)).contents.st_info & 0xF
    if kind in (_STT_FUNC, _STT_GNU_IFUNC):
        return None
    return _STT_NAMES.get(kind, f"a symbol of ELF type {kind}")


class VMValue(ctypes.Structure):
    """upstream.md §9.3: ``{uint32_t typeind; uint64_t data}`` (16 bytes, 8-aligned)."""

    _fields_ = [("typeind", ctypes.c_uint32), ("data", ctypes.c_uint64)]


UPSTREAM_PROTOTYPE = ctypes.CFUNCTYPE(VMValue, ctypes.POINTER(VMValue), ctypes.c_uint32)


@dataclass(frozen=True)
class BoundFunction:
    """A function whose symbol was found: its address and the Python call."""

    function: FfiFunction
    address: int
    call: Callable
    library: str = ""                # as the config wrote it, for the crash line

    @property
    def crash_name(self) -> bytes:
        """How the line before a crash inside it names it (docs/ffi.md): the symbol, the
        code and the library, control characters escaped, as UTF-8."""
        function = self.function
        library = f", {self.library}" if self.library else ""
        return shown_name(f"{function.symbol} (ncall 0x{function.code:x}{library})").encode("utf-8", "replace")


def _fail_unmapped(reason: str):
    def handler(core, io) -> None:
        raise NativeFailure(f"unmapped: {reason}")
    return handler


class FfiRuntime:
    """The result of loading: bound functions, the unmapped codes, and the libraries kept open."""

    def __init__(self) -> None:
        self.bound: list[BoundFunction] = []
        self.unmapped: dict[int, tuple[FfiFunction, str]] = {}
        self.libraries: list[ctypes.CDLL] = []        # kept for the run: never closed under a call

    def bind(self, configs: list[FfiConfig], warn: Callable[[str], None]) -> None:
        """Open every library and resolve every symbol once; failures warn and leave codes unmapped."""
        for config in configs:
            path, why = resolve_library(config.path, config.library)
            library = None
            if path is not None:
                try:
                    library = ctypes.CDLL(path)
                except OSError as exc:
                    why = f"cannot be loaded: {exc}"
            if library is None:
                self._unmap(config.functions, f"library {config.library!r} of {config.path}: {why}", warn)
                continue
            self.libraries.append(library)
            for function in config.functions:
                try:
                    address = ctypes.cast(getattr(library, function.symbol), ctypes.c_void_p).value
                except AttributeError:
                    self._unmap([function], f"{config.path}: {function.key}.name: symbol "
                                f"{function.symbol!r} is not in {config.library}", warn)
                    continue
                kind = _symbol_kind(address)
                if kind is not None:
                    self._unmap([function], f"{config.path}: {function.key}.name: {function.symbol!r} in "
                                f"{config.library} is {kind}, not a function", warn)
                    continue
                self.bound.append(BoundFunction(function, address, _python_call(function, address),
                                                config.library))

    def _unmap(self, functions, reason: str, warn: Callable[[str], None]) -> None:
        codes = ", ".join(f"0x{f.code:x}" for f in functions)
        what = (f"ncall {codes} stays" if len(functions) == 1 else f"ncalls {codes} stay") if codes \
            else "no ncall is"
        warn(f"warning: {reason}; {what} unmapped")
        for function in functions:
            self.unmapped[function.code] = (function, reason)

    def install(self, core, io) -> None:
        """Give ``core`` and ``io`` every function: C table entries where the core has one."""
        for code, (function, reason) in self.unmapped.items():
            io.extra_natives[code] = (function.symbol, _fail_unmapped(reason))
        install_c = getattr(core, "install_ffi", None)
        for bound in self.bound:
            function = bound.function
            io.extra_natives[function.code] = (function.symbol, bound.call)
            if install_c is not None:
                signature = function.signature
                if signature is None:
                    install_c(function.code, bound.address, function.argc, -1, b"", bound.crash_name)
                else:
                    install_c(function.code, bound.address, function.argc, int(signature.ret),
                              bytes(int(t) for t in signature.args), bound.crash_name)


def load_native_configs(target: str, warn: Callable[[str], None],
                        platform: str = sys.platform) -> FfiRuntime:
    """Read and check every config (ConfigError), then bind the libraries (warnings)."""
    configs = read_configs(target, platform)
    if not configs:
        warn(f"warning: --native-configs={target}: no *.toml config in the folder; no ncall is mapped")
    runtime = FfiRuntime()
    runtime.bind(configs, warn)
    return runtime


# ---------------------------------------------------------------------- the Python calls


def pointer_argument(core, index: int):
    """The host pointer for a ``ptr`` argument in register ``index``: ``(address, keepalive)``.

    Only an address the VM handed out is accepted (semantics: never a pointer
    the program made up): a heap address (tag ``address``) inside a live block,
    or a main-memory address (StrAddr, ds_addr) inside main memory.
    """
    bits, tag = core.get_reg(index)
    if tag not in (Tag.ADDR, Tag.STR, Tag.DS_ADDR):
        raise NativeFailure(f"ptr argument r{index} holds a {Tag(tag).display_name}, not a heap or "
                            "main-memory address", Exc.IncorrectRegType)
    pointer = core.host_pointer(bits, tag)
    if pointer is None:
        if tag == Tag.ADDR:
            raise NativeFailure(f"ptr argument r{index}: heap address 0x{bits:x} is not inside a live "
                                "block", Exc.HeapSegmFault)
        raise NativeFailure(f"ptr argument r{index}: address 0x{bits:x} is outside main memory",
                            Exc.MainSegmFault)
    return pointer


def _int_argument(kind: FfiType, bits: int, tag: int) -> int:
    width, signed = _INT_WIDTH[kind]
    value = (as_i64(bits, tag) if signed else as_u64(bits, tag)) & ((1 << width) - 1)
    if signed and value >> (width - 1):
        value -= 1 << width
    return value


def _python_call(function: FfiFunction, address: int) -> Callable:
    """The handler (``handler(core, io)``) that calls ``function`` through ctypes."""
    signature, argc = function.signature, function.argc
    if signature is None:
        fn = UPSTREAM_PROTOTYPE(address)

        def upstream(core, io) -> None:
            # upstream.md §9.3 with semantics.md §3.19: data = the register's bits
            # (a float's IEEE bits, never truncated), typeind = its tag.
            values = (VMValue * max(argc, 1))()
            for i in range(argc):
                bits, tag = core.get_reg(i + 1)
                values[i].typeind, values[i].data = tag, bits
            result = fn(values, argc)
            if result.typeind not in VALID_TAGS:
                core.raise_exception(Exc.InvalidDataType)      # r0 unchanged, as the C path
                return
            core.set_reg(0, result.data, result.typeind)
        return upstream

    fn = ctypes.CFUNCTYPE(_CTYPES[signature.ret], *(_CTYPES[t] for t in signature.args))(address)
    ret = signature.ret

    def typed(core, io) -> None:
        values: list = [None] * len(signature.args)
        keep = []
        # Pointers first: a refused one must leave everything as it was (like the C path).
        for i, kind in enumerate(signature.args):
            if kind == FfiType.PTR:
                values[i], keepalive = pointer_argument(core, i + 1)
                keep.append(keepalive)
        for i, kind in enumerate(signature.args):
            if kind != FfiType.PTR:
                bits, tag = core.get_reg(i + 1)
                values[i] = as_f64(bits, tag) if kind == FfiType.F64 else _int_argument(kind, bits, tag)
        result = fn(*values)
        del keep
        if ret == FfiType.VOID:
            return
        if ret == FfiType.F64:
            core.set_reg(0, bits_from_f64(result), Tag.F64)
        else:
            core.set_reg(0, result & MASK64, Tag.I64 if _INT_WIDTH[ret][1] else Tag.U64)
    return typed


def host_library_name(stem: str) -> str:
    """``libSTEM.so`` / ``libSTEM.dylib`` / ``STEM.dll``: what the tests and examples build."""
    if sys.platform == "darwin":
        return f"lib{stem}.dylib"
    if sys.platform == "win32":
        return f"{stem}.dll"
    return f"lib{stem}.so"


__all__ = ["ConfigError", "FfiConfig", "FfiFunction", "FfiRuntime", "FfiType", "Signature",
           "load_native_configs", "parse_config", "parse_signature", "read_configs"]
