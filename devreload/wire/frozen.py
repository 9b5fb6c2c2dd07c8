"""Frozen records for the protocol's messages, built without compiling code per class.

``dataclasses.dataclass(frozen=True)`` writes and compiles six methods for each class: for
the protocol's thirty messages, about 8 ms of every monitor's, template's and spawned
worker's start. These records get the same behaviour from shared methods: construction by
position or keyword with defaults (``field(default_factory=...)`` too), equality and a hash
over the fields, a dataclass-like repr, no assignment, pickling. Type checkers see
:mod:`dataclasses` itself (see :mod:`devreload.wire.messages`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_MISSING = object()


class _Factory:
    """A default made anew for each record (``field(default_factory=...)``)."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], Any]) -> Any:
    return _Factory(default_factory)


def dataclass(*, frozen: bool) -> Callable[[type], type]:
    """``@dataclass(frozen=True)`` for a class with no base but ``object``."""
    if not frozen:
        raise TypeError("only frozen records are built here")
    return _frozen


def _frozen(cls: type) -> type:
    names = tuple(cls.__annotations__)  # its own (Python 3.10 and later), as strings
    defaults = {name: cls.__dict__[name] for name in names if name in cls.__dict__}
    for name, value in defaults.items():
        if isinstance(value, _Factory):
            delattr(cls, name)
    cls._fields = names  # type: ignore[attr-defined]
    cls._defaults = defaults  # type: ignore[attr-defined]
    methods = {"__init__": _init, "__eq__": _eq, "__hash__": _hash, "__repr__": _repr,
               "__setattr__": _setattr, "__delattr__": _delattr, "__match_args__": names}
    for name, method in methods.items():
        setattr(cls, name, method)
    return cls


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    names = self._fields
    if len(args) > len(names):
        raise TypeError(f"{type(self).__name__}() takes {len(names)} arguments, "
                        f"{len(args)} given")
    values = dict(zip(names, args, strict=False))
    for name, value in kwargs.items():
        if name not in names or name in values:
            raise TypeError(f"{type(self).__name__}() got an unexpected or repeated "
                            f"argument {name!r}")
        values[name] = value
    for name in names:
        if name not in values:
            default = self._defaults.get(name, _MISSING)
            if default is _MISSING:
                raise TypeError(f"{type(self).__name__}() is missing argument {name!r}")
            values[name] = default.make() if isinstance(default, _Factory) else default
        object.__setattr__(self, name, values[name])


def _values(record: Any) -> tuple[Any, ...]:
    return tuple(getattr(record, name) for name in record._fields)


def _eq(self: Any, other: object) -> object:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: Any) -> int:
    return hash(_values(self))


def _repr(self: Any) -> str:
    inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
    return f"{type(self).__qualname__}({inner})"


def _setattr(self: Any, name: str, value: Any) -> None:
    raise AttributeError(f"cannot assign to field {name!r} of a frozen message")


def _delattr(self: Any, name: str) -> None:
    raise AttributeError(f"cannot delete field {name!r} of a frozen message")
