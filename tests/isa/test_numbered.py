"""voxvm/numbered.py: the IntEnum behaviour the toolchain relies on, kept without ``enum``."""

import pickle

import pytest

from voxvm.numbered import Numbered


class Colour(Numbered):
    _fields = ("spelling",)

    RED = 1, "red"
    GREEN = 2, "green"
    CRIMSON = 1, "crimson"      # an alias of RED

    @property
    def warm(self) -> bool:
        return self is Colour.RED


class Plain(Numbered):
    ZERO = 0
    TWO = 2


def test_members_are_unique_ints_of_their_class():
    assert isinstance(Colour.RED, Colour) and isinstance(Colour.RED, int)
    assert Colour.RED == 1 and Colour(1) is Colour.RED and Colour["GREEN"] is Colour.GREEN
    assert Colour.RED.name == "RED" and Colour.RED.value == 1 and Colour.RED.spelling == "red"
    assert Colour.RED.warm and not Colour.GREEN.warm
    assert {Colour.RED: "x"}[1] == "x"


def test_text_is_the_number_and_repr_names_the_member():
    assert str(Plain.TWO) == "2" and f"{Plain.TWO}" == "2" and f"{Plain.TWO:03x}" == "002"
    assert repr(Plain.TWO) == "<Plain.TWO: 2>"


def test_an_alias_names_the_first_member_and_is_not_iterated():
    assert Colour.CRIMSON is Colour.RED and Colour["CRIMSON"] is Colour.RED
    assert list(Colour) == [Colour.RED, Colour.GREEN] and len(Colour) == 2


def test_lookup_failures_are_value_and_key_errors():
    with pytest.raises(ValueError, match="3 is not a valid Plain"):
        Plain(3)
    with pytest.raises(ValueError):
        Plain("0")
    with pytest.raises(KeyError):
        Plain["ONE"]
    assert 2 in Plain and 3 not in Plain and "2" not in Plain


def test_members_pickle_to_themselves_and_cannot_be_reassigned():
    assert pickle.loads(pickle.dumps(Colour.GREEN)) is Colour.GREEN
    with pytest.raises(AttributeError):
        Colour.RED = 5


def test_a_line_with_the_wrong_number_of_fields_is_refused():
    with pytest.raises(TypeError, match="expected 1 field"):
        class Broken(Numbered):
            _fields = ("spelling",)
            ONE = 1
