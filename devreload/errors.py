"""Typed errors: the library raises them, only the command layer turns them into one line.

Every message is a single line that names what is wrong and where (file, section, key or
address), so the command layer can print ``str(error)`` as is, without a traceback.
"""

from __future__ import annotations


class DevreloadError(Exception):
    """A problem the user can fix; ``str()`` is one line that says what and where."""


class ConfigError(DevreloadError):
    """A bad or missing setting in a config file (an ini, its ``[devreload]`` section, ...)."""

    def __init__(
        self, path: str, section: str | None, message: str, key: str | None = None
    ) -> None:
        self.path = path
        self.section = section
        self.key = key
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path
        if self.section:
            where += f": [{self.section}]"
        if self.key:
            where += f" {self.key}"
        return f"{where}: {self.message}"


class SettingValueError(ConfigError):
    """A setting in a config file whose value the option does not take (``nan`` seconds,
    ``maybe`` for a switch): a usage error, exit code 2, as on the command line."""


class AddressError(DevreloadError):
    """A listen address that cannot be parsed or bound (other than "in use")."""


class AddressInUseError(AddressError):
    """The port (or unix socket) is already taken by another process."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(
            f"cannot listen on {address}: address already in use "
            "(stop the other server or choose another port)"
        )


class ServerOptionError(DevreloadError):
    """An option the chosen server (waitress or uvicorn) does not know or cannot take."""

    def __init__(self, server: str, key: str, message: str) -> None:
        self.server = server
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message} (server: {server})")


class MonitorChoiceError(DevreloadError):
    """``DEVRELOAD_MONITOR`` names no file monitor (the command line exits 2 on it)."""


class AppImportError(DevreloadError):
    """An app import string (``"pkg.mod:app"``) that does not lead to an app."""


class AppModuleError(ConfigError):
    """The module an ini's ``use =`` names (the app's, a filter's, a server's) failed to
    import: a syntax error, a missing module, an exception at import time."""


class AppFactoryError(ConfigError):
    """The app's factory (or a filter's) raised while building the app."""

    def __init__(self, path: str, section: str, where: str, cause: BaseException) -> None:
        name = type(cause).__name__
        super().__init__(path, section, f"building the app failed at {where}: {name}: {cause}")
