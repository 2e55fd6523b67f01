"""voxvm/records.py: the namedtuple behaviour the run path's value types rely on."""

import copy
import pickle

import pytest

from voxvm.program import Program
from voxvm.records import record


class Point(record("Point", "x y label", defaults=("-",))):
    __slots__ = ()

    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)


def test_fields_by_position_and_name_with_trailing_defaults():
    p = Point(1, -2)
    assert p == (1, -2, "-") and p.x == 1 and p.y == -2 and p.label == "-" and p.norm1() == 3
    assert Point(y=5, x=4, label="a") == (4, 5, "a")
    x, y, label = Point(7, 8, "z")
    assert (x, y, label) == (7, 8, "z")
    assert Point._fields == ("x", "y", "label") and Point._field_defaults == {"label": "-"}


def test_replace_asdict_repr_and_hash():
    p = Point(1, 2)
    assert p._replace(y=9) == Point(1, 9) and type(p._replace()) is Point
    assert p._asdict() == {"x": 1, "y": 2, "label": "-"}
    assert repr(p) == "Point(x=1, y=2, label='-')"
    assert hash(p) == hash((1, 2, "-"))


def test_bad_arguments_are_type_errors_like_a_call():
    with pytest.raises(TypeError, match="missing required argument 'y'"):
        Point(1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        Point(1, 2, z=3)
    with pytest.raises(TypeError, match="multiple values for argument 'x'"):
        Point(1, 2, x=3)
    with pytest.raises(TypeError, match="takes 3 arguments but 4 were given"):
        Point(1, 2, 3, 4)


def test_records_are_immutable_and_pickle_by_value():
    p = Point(1, 2)
    with pytest.raises(AttributeError):
        p.x = 5
    program = Program(b"\x00", 0, 0, (0,), "p.vve", None)
    assert pickle.loads(pickle.dumps(program)) == program and copy.copy(program) == program
