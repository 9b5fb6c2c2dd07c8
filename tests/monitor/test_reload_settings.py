"""The loop's settings refuse what would make a deadline unreachable or overflow it."""

from __future__ import annotations

import math
from typing import Any

import pytest

from devreload.monitor.settings import ReloadSettings


@pytest.mark.parametrize("name", ["reload_interval", "shutdown_interval", "drain_interval",
                                  "poll_interval", "cooperative_timeout"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_intervals_are_finite_and_not_negative(name: str, value: float) -> None:
    given: dict[str, Any] = {name: value}
    with pytest.raises(ValueError, match=rf"^{name}: "):
        ReloadSettings(**given)


def test_no_cooperative_timeout_is_none() -> None:
    assert ReloadSettings(cooperative_timeout=None).cooperative_timeout is None
