"""Records: immutable tuples with named fields, built without ``collections``.

Owns ``record(name, fields, defaults)``, the base of the run path's value
types (voxvm/config.py ``VMConfig``, ``SegmentSpec``, ``RunOption``;
voxvm/program.py ``Program``, ``Symbols``; voxvm/host/registry.py
``Native``). A run builds them in its first milliseconds, and
``collections.namedtuple`` costs more than a small run: importing
``collections`` alone is about 7.5 M instructions, and each class compiles its
constructor with ``exec`` (about 0.8 M more; docs/performance.md "Start-up").
Dataclasses cost more still.

A record behaves as a namedtuple does where the toolchain relies on it: a
``tuple`` subclass (equality, hashing, unpacking, pickling by value), fields
by name, positional or keyword construction with trailing defaults,
``_fields``, ``_field_defaults``, ``_asdict()``, ``_replace(**changes)`` and
``repr()`` as ``Name(field=value, ...)``. Subclasses add methods and may
override ``__new__`` (calling ``super().__new__``), as with namedtuple.
"""

from __future__ import annotations


def _field_getter(i: int):
    """The getter of field ``i``. Not ``operator.itemgetter``: even its C half,
    ``_operator``, costs a run 0.35 M instructions to import, and reading a record's
    field is never on a hot path."""
    return lambda self: self[i]


def record(name: str, fields: str | tuple[str, ...] | dict, defaults: tuple = ()) -> type:
    """A tuple subclass ``name`` with ``fields`` (a space-separated string or a sequence);
    ``defaults`` fill the last fields when they are not given."""
    fields = tuple(fields.split() if isinstance(fields, str) else fields)
    defaults = tuple(defaults)
    if len(defaults) > len(fields):
        raise TypeError(f"{name}: more defaults than fields")
    size = len(fields)
    index = {field: i for i, field in enumerate(fields)}
    field_defaults = dict(zip(fields[size - len(defaults):], defaults))

    def __new__(cls, *args, **changes):
        if changes or len(args) != size:
            args = _bind(cls.__name__, args, changes)
        return tuple.__new__(cls, args)

    def _bind(typename: str, args: tuple, given: dict) -> tuple:
        # Dict and zip work in C: a record with many keyword fields (VMConfig, the
        # RUN_OPTIONS table) is built at start-up, so this path has to be quick too.
        if len(args) > size:
            raise TypeError(f"{typename}() takes {size} arguments but {len(args)} were given")
        values = dict(field_defaults)
        values.update(zip(fields, args))
        if given:
            for field in given:
                if field not in index:
                    raise TypeError(f"{typename}() got an unexpected keyword argument '{field}'")
                if index[field] < len(args):
                    raise TypeError(f"{typename}() got multiple values for argument '{field}'")
            values.update(given)
        if len(values) != size:
            missing = next(field for field in fields if field not in values)
            raise TypeError(f"{typename}() missing required argument '{missing}'")
        return tuple(map(values.__getitem__, fields))

    def _replace(self, **changes):
        """A copy with ``changes`` (``type(self)(...)``, so a subclass's checks run again)."""
        return type(self)(**{**self._asdict(), **changes})

    def _asdict(self) -> dict:
        return dict(zip(fields, self))

    def __repr__(self) -> str:
        inner = ", ".join(f"{field}={value!r}" for field, value in zip(fields, self))
        return f"{type(self).__name__}({inner})"

    def __getnewargs__(self) -> tuple:
        return tuple(self)

    namespace = {"__slots__": (), "__doc__": f"{name}({', '.join(fields)})",
                 "_fields": fields, "_field_defaults": field_defaults, "__new__": __new__,
                 "_replace": _replace, "_asdict": _asdict, "__repr__": __repr__,
                 "__getnewargs__": __getnewargs__, "__match_args__": fields}
    for i, field in enumerate(fields):
        namespace[field] = property(_field_getter(i), doc=f"field {i}: {field}")
    return type(name, (tuple,), namespace)
