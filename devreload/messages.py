"""The protocol, written down once: what crosses between monitor, template and worker,
and the events the monitor's one loop decides on.

Messages travel pickled over a :class:`~devreload.channel.Channel`; both ends import
this module, so a message is a small frozen dataclass, never a string tag.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devreload.log import display_path

#: Where pages listen for reloads: served by the worker's live-reload wrapper, and by the
#: monitor's error page while the app is broken.
EVENTS_PATH = "/__devreload__/events"


# --------------------------------------------------------------------------- monitor -> worker


@dataclass(frozen=True)
class Spec:
    """What a new worker runs; the first message it receives."""

    worker_path: str | Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    sys_path: tuple[str, ...] = ()
    argv: tuple[str, ...] = ()
    #: The worker says Ready itself (a server, once it listens); else it is ready at once.
    announce_ready: bool = False


@dataclass(frozen=True)
class StaticChanged:
    """A static file changed: the worker tells open pages, no restart."""

    path: str


# --------------------------------------------------------------------------- worker -> monitor


@dataclass(frozen=True)
class Modules:
    """Source files the worker imported, and library modules the template may preload."""

    files: tuple[str, ...]
    libraries: tuple[str, ...]


@dataclass(frozen=True)
class Watch:
    """Paths or globs the worker asked to watch."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class Failed:
    """The worker's failure report (a compact traceback, or one line)."""

    report: str


@dataclass(frozen=True)
class Ready:
    """The worker answers: a restart is timed up to here."""


@dataclass(frozen=True)
class ReloadAsked:
    """``trigger_reload()`` in the worker."""


@dataclass(frozen=True)
class ShutdownAsked:
    """``graceful_shutdown()`` in the worker."""


FromWorker = Modules | Watch | Failed | Ready | ReloadAsked | ShutdownAsked
ToWorker = Spec | StaticChanged


# --------------------------------------------------------------------------- monitor <-> template


@dataclass(frozen=True)
class Preload:
    """Import these library modules now, so that forked workers have them."""

    modules: tuple[str, ...]


@dataclass(frozen=True)
class Fork:
    """Fork a worker; its channel end and the listening sockets travel with this message."""


@dataclass(frozen=True)
class Forked:
    pid: int


@dataclass(frozen=True)
class Tainted:
    """Importing ``module`` started a thread: the template is unsafe to fork and quits."""

    module: str


Message = FromWorker | ToWorker | Preload | Fork | Forked | Tainted


# --------------------------------------------------------------------------- the monitor's queue


@dataclass(frozen=True)
class FileChanged:
    """A file monitor saw ``path`` change (from its thread)."""

    path: str

    def describe(self) -> str:
        return display_path(self.path)


@dataclass(frozen=True)
class ReloadRequested:
    """A restart asked for by other means: a signal, ``trigger_reload()``, exit 75, code."""

    reason: str

    def describe(self) -> str:
        return self.reason


#: What a restart is for; ``ReloadStrategy.should_restart`` gets one.
Trigger = FileChanged | ReloadRequested


@dataclass(frozen=True)
class SignalReceived:
    signum: int


@dataclass(frozen=True)
class WorkerSaid:
    """A message from a worker; ``worker`` is the monitor's record of it."""

    worker: Any
    message: FromWorker


@dataclass(frozen=True)
class EnterPressed:
    """Enter at the terminal after a crash."""


Event = Trigger | SignalReceived | WorkerSaid | EnterPressed

