"""The protocol's records behave as frozen dataclasses do, side by side with real ones."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest

from devreload.wire import frozen
from devreload.wire.messages import Milestone, Spec, StandDown


@frozen.dataclass(frozen=True)
class Cheap:
    name: str
    count: int = 0
    tags: dict[str, Any] = frozen.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Real:
    name: str
    count: int = 0
    tags: dict[str, Any] = dataclasses.field(default_factory=dict)


CHEAP: Any = Cheap
REAL: Any = Real


@pytest.mark.parametrize("record", [CHEAP, REAL], ids=["frozen", "dataclasses"])
def test_a_record_behaves_like_a_frozen_dataclass(record: Any) -> None:
    one = record("a", 2)
    assert one == record(name="a", count=2) == record("a", count=2)
    assert one != record("a", 3)
    assert hash(record("a", 2, ())) == hash(record("a", 2, ()))
    assert one.tags == {} and one.tags is not record("b").tags, "a fresh default each"
    assert repr(record("a")) == f"{record.__qualname__}(name='a', count=0, tags={{}})"
    with pytest.raises(AttributeError):
        one.name = "b"
    with pytest.raises(AttributeError):
        del one.count
    with pytest.raises(TypeError):
        record()
    with pytest.raises(TypeError):
        record("a", name="b")
    with pytest.raises(TypeError):
        record("a", colour="red")
    assert pickle.loads(pickle.dumps(one)) == one
    match one:
        case record(name, count):
            assert (name, count) == ("a", 2)


def test_the_messages_are_such_records() -> None:
    spec = Spec("pkg.mod:main", argv=("x",))
    assert pickle.loads(pickle.dumps(spec)) == spec and spec.kwargs == {}
    other: object = Milestone("", 0.0)
    assert StandDown() == StandDown() and StandDown() != other
    assert repr(Milestone("app built", 1.5)) == "Milestone(phase='app built', at=1.5)"
