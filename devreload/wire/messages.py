"""The protocol, written down once: what crosses between monitor, template and worker,
over the channel.

Messages travel pickled over a :class:`~devreload.wire.channel.Channel`; both ends import
this module, so a message is a small frozen dataclass (:mod:`devreload.wire.frozen` builds
them), never a string tag.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: ``typing.TYPE_CHECKING``, spelled so that type checkers see real dataclasses while every
#: process that speaks the protocol builds the cheaper records of the same behaviour.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
else:
    from devreload.wire.frozen import dataclass, field

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
    #: Modules to import before the app (see ``Modules.warm``).
    warm: tuple[str, ...] = ()
    #: A retry of a failure already shown: report it to the monitor, not to stderr again.
    quiet_failure: bool = False
    #: The previous worker may still accept: build the app, but wait at the gate for Go.
    gated: bool = False
    #: Its whole environment, when it is not the one it started with (a stack's process).
    environ: dict[str, str] | None = None


@dataclass(frozen=True)
class StaticChanged:
    """A static file changed: the worker tells open pages, no restart."""

    path: str


@dataclass(frozen=True)
class Go:
    """The previous worker has stopped accepting: a gated worker may accept now."""


@dataclass(frozen=True)
class StandDown:
    """A gated worker is not needed any more (another change came while it started): it
    stops as SIGTERM stops it, without ever accepting."""


@dataclass(frozen=True)
class Heard:
    """The monitor has taken the worker's ``Files`` report that asked for an answer."""


@dataclass(frozen=True)
class Hurry:
    """Everything stops (Ctrl-C): a draining server gets the shutdown interval, no longer
    its drain interval, to finish its requests."""


@dataclass(frozen=True)
class Leave:
    """A stopped worker may exit now: the next one serves (or none is coming). Its
    exit, with every finalizer, would otherwise share the CPU with the next one's start."""


@dataclass(frozen=True)
class Stop:
    """Stop as SIGTERM stops a worker: where the monitor does not signal it (Windows,
    ``DEVRELOAD_PORTABLE=1``), this is the graceful stop."""


@dataclass(frozen=True)
class SharedSockets:
    """The listening sockets of a worker spawned where descriptors neither travel nor are
    inherited (Windows): each as ``socket.share`` made it for this worker; sent first."""

    shares: tuple[bytes, ...]


@dataclass(frozen=True)
class RestartPending:
    """A change is waiting: a cooperative worker should exit 75 at its next safe point."""


# --------------------------------------------------------------------------- worker -> monitor


@dataclass(frozen=True)
class Modules:
    """Source files the worker imported, library modules the template may preload, and
    the library modules it may not, with the reason (see :mod:`devreload.worker.preload`)."""

    files: tuple[str, ...]
    libraries: tuple[str, ...]
    refused: tuple[tuple[str, str], ...] = ()
    #: Modules devreload imported for the app after it ran (its server): the next worker
    #: imports them before the app, so that they can be preloaded.
    warm: tuple[str, ...] = ()


#: Why a module's own source was read: to import it (watched as soon as it is read, as
#: every module is, but no news in ``-v``).
IMPORTED = "imported"


@dataclass(frozen=True)
class Read:
    """A project file read as code or configuration: when first read (wall clock; only a
    change after that is news), and why it counts (``-v`` says it)."""

    path: str
    at: float
    why: str


@dataclass(frozen=True)
class Files:
    """Project files the worker read as code or configuration (watched like its modules),
    files it wrote, removed or renamed (never watched), and the folders it read data from
    (never watched either: see :mod:`devreload.worker.reads`)."""

    read: tuple[Read, ...]
    written: tuple[str, ...]
    data: tuple[str, ...] = ()
    #: A watched file is about to become the worker's own (written, removed, renamed):
    #: it waits for ``Heard`` first, or the monitor would take its doing for a change.
    answer: bool = False


@dataclass(frozen=True)
class Watch:
    """Paths or globs the worker asked to watch; ``static``: files (a folder: every file
    in it) pushed to open pages when they change, never a restart."""

    paths: tuple[str, ...]
    static: bool = False


@dataclass(frozen=True)
class Frame:
    """One frame of a failure's traceback, for the error page: ``user`` tells the app's
    own code from libraries (folded on the page); ``context`` is the source around
    ``lineno``, its first line being line ``first``."""

    filename: str
    lineno: int
    name: str
    user: bool
    first: int = 0
    context: tuple[str, ...] = ()


@dataclass(frozen=True)
class Failed:
    """The worker's failure report (a compact traceback, or one line). ``frames`` and
    ``exception`` (its last lines, as Python prints them) let the error page show the
    source around each frame; a report without them is shown as plain text."""

    report: str
    frames: tuple[Frame, ...] = ()
    exception: str = ""


@dataclass(frozen=True)
class Ready:
    """The worker answers: a restart is timed up to here."""


@dataclass(frozen=True)
class AtGate:
    """A worker started while an old one still accepts has built its app and waits for
    ``Go`` (since ``at``, wall clock): an old worker that serves until then may stop."""

    at: float


@dataclass(frozen=True)
class ReloadAsked:
    """``trigger_reload()`` in the worker."""


@dataclass(frozen=True)
class Released:
    """The worker no longer accepts (a server: its listeners are closed, its requests may
    still be finishing; any other program: it has ended): the next worker need not wait
    for the rest."""


@dataclass(frozen=True)
class ShutdownAsked:
    """``graceful_shutdown()`` in the worker."""


@dataclass(frozen=True)
class Milestone:
    """A step of the worker's start the monitor cannot see, for the reload timeline (-v):
    ``phase`` happened at ``at`` (wall clock)."""

    phase: str
    at: float


# --------------------------------------------------------------------------- both ways


@dataclass(frozen=True)
class Connections:
    """Idle keep-alive connections, their sockets travelling alongside as fds (one per
    item), or, where descriptors do not travel (Windows), as ``shares`` (``socket.share``
    made for the receiver): a stopping worker hands them to the monitor, the monitor to
    the next worker once it serves. ``data`` holds, per connection, the bytes of its next
    request that were read already but not parsed (a partial head), to be fed first."""

    data: tuple[bytes, ...] = ()
    shares: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class ConnectionsTaken:
    """The monitor has parked the connections of every ``Connections`` sent before: a worker
    waits for this before it exits, so none is lost with its end of the channel."""


FromWorker = (
    Modules | Files | Watch | Failed | Ready | AtGate | ReloadAsked | Released | ShutdownAsked
    | Connections | Milestone
)
ToWorker = (
    Spec | StaticChanged | RestartPending | Connections | ConnectionsTaken | Go | StandDown
    | Leave | Hurry | Heard | Stop | SharedSockets
)


# --------------------------------------------------------------------------- monitor <-> template


@dataclass(frozen=True)
class Preload:
    """Import these library modules now, so that forked workers have them."""

    modules: tuple[str, ...]


@dataclass(frozen=True)
class Fork:
    """Fork a worker; its channel end and the listening sockets travel with this message.
    A ``spare`` gets only a line to the monitor, and waits on it for its Adopt."""

    spare: bool = False


@dataclass(frozen=True)
class Forked:
    pid: int


@dataclass(frozen=True)
class Adopt:
    """A spare worker's go: its channel end and the listening sockets travel with this."""


@dataclass(frozen=True)
class Tainted:
    """Importing ``module`` started a thread: the template is unsafe to fork and quits."""

    module: str


Message = FromWorker | ToWorker | Preload | Fork | Forked | Adopt | Tainted
