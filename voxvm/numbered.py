"""Numbered kinds: the small integer enumerations every layer shares, without ``enum``.

Owns ``Numbered``, the base class of tags, exceptions, traps, run statuses and
exit statuses (voxvm/tags.py, voxvm/traps.py, voxvm/backends/__init__.py,
voxvm/errors.py). A run needs these on its first millisecond, and
``enum.IntEnum`` is the most expensive thing it would import: the ``enum``
module pulls in ``functools`` and ``collections``, and every class costs about
1.5 M instructions to build (docs/performance.md "Start-up"). A ``Numbered``
class costs a few thousand.

What it keeps of ``IntEnum`` is what the toolchain uses: members are ``int``
instances of their class, unique per value (``is`` compares them), with
``.name`` and ``.value``; ``str()`` and ``format()`` give the number as
``IntEnum`` does since Python 3.11; ``repr()`` is ``<Tag.U64: 1>``; the class
looks members up by value (``Tag(1)``, ``ValueError`` when there is none) and
by name (``Tag["U64"]``), iterates them in definition order and pickles them
by value. A second name for a value already listed is an alias of its member,
as in ``IntEnum``. A member may carry extra fields: the class lists their names in
``_fields`` and each member is written ``NAME = value, field1, field2, ...``.
"""

from __future__ import annotations


class _NumberedType(type):
    """The metaclass: turns the ``NAME = value`` lines of a class body into members."""

    def __new__(mcls, name: str, bases: tuple, namespace: dict):
        lines = [(key, value) for key, value in namespace.items()
                 if not key.startswith("_") and isinstance(value, (int, tuple))]
        for key, _ in lines:
            del namespace[key]
        cls = super().__new__(mcls, name, bases, namespace)
        fields = getattr(cls, "_fields", ())
        members: dict[str, Numbered] = {}
        by_value: dict[int, Numbered] = {}
        for key, line in lines:
            number, *extra = line if isinstance(line, tuple) else (line,)
            if len(extra) != len(fields):
                raise TypeError(f"{name}.{key}: expected {len(fields)} field(s) after the value")
            member = by_value.get(number)
            if member is None:
                member = int.__new__(cls, number)
                member.name = key
                for field, value in zip(fields, extra):
                    setattr(member, field, value)
                by_value[number] = member
            type.__setattr__(cls, key, member)   # a repeated value is an alias, as in IntEnum
            members[key] = member
        cls._members = members
        cls._by_value = by_value
        return cls

    def __call__(cls, value):
        """The member whose value is ``value`` (a member gives itself)."""
        try:
            return cls._by_value[value]
        except (KeyError, TypeError):
            raise ValueError(f"{value!r} is not a valid {cls.__name__}") from None

    def __getitem__(cls, name: str):
        return cls._members[name]

    def __iter__(cls):
        return iter(cls._by_value.values())      # aliases left out, as in IntEnum

    def __len__(cls) -> int:
        return len(cls._by_value)

    def __contains__(cls, value) -> bool:
        return isinstance(value, int) and value in cls._by_value

    def __setattr__(cls, key: str, value) -> None:
        if key in cls.__dict__.get("_members", ()):
            raise AttributeError(f"cannot reassign member {cls.__name__}.{key}")
        super().__setattr__(key, value)


class Numbered(int, metaclass=_NumberedType):
    """Base of a numbered kind (module docstring); subclasses list ``NAME = value`` lines."""

    name: str

    @property
    def value(self) -> int:
        return int(self)

    __str__ = int.__repr__          # the number, as IntEnum's str() since Python 3.11
    __format__ = int.__format__

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.name}: {int(self)}>"

    def __reduce__(self):
        return type(self), (int(self),)
