"""One reading of the values an ini (or a command line) writes as text: true and false,
seconds. A bad value raises ConfigError naming the file, the section and the key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devreload.errors import ConfigError


def asbool(text: str) -> bool:
    """An ini's idea of true and false."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on", "y", "t"):
        return True
    if lowered in ("0", "false", "no", "off", "n", "f", ""):
        return False
    raise ValueError(f"{text!r} is not a boolean")


def conf_bool(conf: Mapping[str, Any], key: str, path: str, section: str) -> bool | None:
    """A true/false setting, None when absent; a bad value raises ConfigError."""
    value = conf.get(key)
    if value is None or isinstance(value, bool):
        return value
    try:
        return asbool(str(value))
    except ValueError:
        raise ConfigError(path, section, f"{value!r} is not true or false", key=key) from None


def conf_seconds(conf: Mapping[str, Any], key: str, path: str, section: str) -> float | None:
    """A number of seconds, None when absent or empty; a bad value raises ConfigError."""
    value = conf.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(path, section, f"{value!r} is not a number of seconds", key=key) from None
    if seconds < 0:
        raise ConfigError(path, section, f"{value!r} must not be negative", key=key)
    return seconds
