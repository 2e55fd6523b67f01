"""The regex-free readings of literals agree with the grammars' regular expressions.

voxasm.literals and voxasm.data read the common spellings (decimal numbers,
``1.5``, ASCII identifiers, ``int[4]``) with ``str`` methods, so that
assembling a typical file never imports ``re``; the regular expressions stay
the definition. These tests compare both on generated tokens built from the
characters that matter.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from voxasm import data, literals

TOKENS = st.text(alphabet="0123456789+-._$@xXbBeEaAfFiInN[]uintflo \t١٣é_", max_size=12)
INT_RE = re.compile(literals._PATTERNS["int"])
FLOAT_RE = re.compile(literals._PATTERNS["float"])
NAME_RE = re.compile(literals._PATTERNS["name"])
ARRAY_RE = re.compile(r"(uint|int|float)\[([0-9]*)\]\Z")


def match_int_by_pattern(token: str):
    m = INT_RE.match(token)
    if m is None:
        return None
    sign, hexa, binary, dec = m.groups()
    value = int(hexa, 16) if hexa is not None else int(binary, 2) if binary is not None else literals.decimal_value(dec)
    return sign == "-", value


def check(token: str) -> None:
    assert literals._match_int(token) == match_int_by_pattern(token), token
    assert literals.is_name(token) == (NAME_RE.match(token) is not None), token
    if literals._plain_float(token):
        assert FLOAT_RE.match(token) is not None, token
    m = ARRAY_RE.match(token)
    assert data.array_type(token) == (m.groups() if m else None), token


@settings(max_examples=3000, deadline=None)
@given(TOKENS)
def test_integers_names_floats_and_array_types_read_as_their_patterns_say(token):
    check(token)


def test_the_common_spellings_take_the_regex_free_path():
    for token in ["0", "42", "-7", "+7", "18446744073709551616"]:
        assert literals._decimal_sign(token) is not None
    for token in ["1.5", "-2.", ".5", "+0.25"]:
        assert literals._plain_float(token)
    assert data.array_type("int[4]") == ("int", "4") and data.array_type("float[]") == ("float", "")
    assert literals.is_name("main_loop2")


EDGES = ["int[١]", "int[3]]", "int[", "uint[]", "float[12]", "int[1[2]", "str[1]", "Int[1]", "int[+1]",
         "١٣", "-١", "+", "-", "0x", "0x1F", "-0b101", "+0X", "00", "1..5", ".", "+.", "-.5", "1.e5",
         "é", "_x", "x-y", ".start", "$v", "9x", "a b"]


def test_the_edge_spellings_read_as_their_patterns_say():
    for token in EDGES:
        check(token)
