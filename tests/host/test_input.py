"""``input`` (0x02) reads whole characters, at most its byte limit, and loses nothing.

What does not fit stays in stdin for the next ``input`` (like ``fgets``):
an odd limit counts one byte less, a character needing more room than is
left (a surrogate pair needs 4 bytes) is not started, a limit of 0 reads
nothing. Read piece by piece with any limits, the text equals the whole
stream decoded at once (invalid UTF-8 as U+FFFD).
"""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from voxvm.host import HostIO

PIECES = [b"a", b"b", b"\n", "é".encode(), "€".encode(), "😀".encode(), b"\xff", b"\xe2", b"\x9f"]


def _reads(data: bytes, limits) -> list[str | None]:
    host = HostIO(io.BytesIO(data), io.BytesIO(), io.BytesIO())
    out = []
    for limit in limits:
        got = host.read_line(limit)
        out.append(None if got is None else got.decode("utf-16-be", "surrogatepass"))
    return out


def test_limits_take_whole_characters_and_leave_the_rest():
    assert _reads("aé€😀bc\nnext\n".encode(), [4, 4, 64, 64, 64]) == ["aé", "€", "😀bc\n", "next\n", None]
    assert _reads("a😀b\n".encode(), [3, 4, 10]) == ["a", "😀", "b\n"]
    # A pair can never fit 2 bytes: taken and cut, so that a loop of small reads ends.
    assert _reads("😀b".encode(), [2, 2, 2]) == ["\ud83d", "b", None]
    assert _reads(b"abc\n", [0, 1, 100]) == ["", "", "abc\n"]


@given(st.lists(st.sampled_from(PIECES), max_size=30),
       st.lists(st.sampled_from([4, 5, 6, 8, 20, 64]), min_size=1, max_size=8))
def test_piece_by_piece_equals_the_whole_stream(pieces, limits):
    data = b"".join(pieces)
    host = HostIO(io.BytesIO(data), io.BytesIO(), io.BytesIO())
    text, turn = [], 0
    while True:
        limit = limits[turn % len(limits)]
        turn += 1
        got = host.read_line(limit)
        if got is None:
            break
        assert len(got) <= limit
        text.append(got.decode("utf-16-be", "surrogatepass"))
        assert turn < 10 * len(data) + 10, "no progress"
        assert got or turn > 1 or not data
    assert "".join(text) == data.decode("utf-8", "replace")
