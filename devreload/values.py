"""One reading of the values an ini (or a command line) writes as text: true and false,
seconds. A bad value raises SettingValueError naming the file, the section and the key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from devreload.errors import SettingValueError


def asbool(text: str) -> bool:
    """An ini's idea of true and false."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on", "y", "t"):
        return True
    if lowered in ("0", "false", "no", "off", "n", "f", ""):
        return False
    raise ValueError(f"{text!r} is not a boolean")


def conf_bool(conf: Mapping[str, Any], key: str, path: str, section: str) -> bool | None:
    """A true/false setting, None when absent; a bad value raises SettingValueError."""
    value = conf.get(key)
    if value is None or isinstance(value, bool):
        return value
    try:
        return asbool(str(value))
    except ValueError:
        raise SettingValueError(path, section, f"{value!r} is not true or false", key=key) from None


def seconds(value: object) -> float:
    """A number of seconds: finite and not negative (``nan`` would make every deadline
    unreachable, ``inf`` overflow one); else ValueError saying why."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number of seconds")
    if number < 0:
        raise ValueError(f"{value!r} must not be negative")
    return number


def conf_seconds(conf: Mapping[str, Any], key: str, path: str, section: str) -> float | None:
    """A number of seconds, None when absent or empty; a bad value raises
    SettingValueError."""
    value = conf.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return seconds(value)
    except ValueError as exc:
        raise SettingValueError(path, section, str(exc), key=key) from None
