"""How the monitor runs and replaces its worker, in one frozen object.

``start_reloader``, the command line and the serving options each build one
:class:`ReloadSettings`; the restart loop and the file watching read it whole. Each
default is written once, here, beside its field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devreload.values import seconds

if TYPE_CHECKING:
    from devreload.filemon.base import FileMonitorFactory


@dataclass(frozen=True)
class ReloadSettings:
    """The restart loop's settings (see ``ReloadStrategy``) and the file watching's (see
    ``Reloader``)."""

    #: The quiet window that folds a burst of changes into one restart (seconds).
    reload_interval: float = 0.05
    #: How long a worker may take to stop after SIGTERM before it is killed (seconds).
    shutdown_interval: float = 1.5
    #: How long a server that stopped accepting (the next worker serves meanwhile) may take
    #: to finish the requests under way (seconds): as long as common graceful-shutdown
    #: defaults (Kubernetes, gunicorn), since its drain delays nobody. Ctrl-C cuts it to
    #: ``shutdown_interval``.
    drain_interval: float = 30.0
    #: How often a polling monitor looks, at the most (seconds); it slows down by itself
    #: on a tree so large that a look costs more than about 1 % of a core.
    poll_interval: float = 0.25
    #: Positional and keyword arguments of the worker's entry point.
    worker_args: tuple[Any, ...] = ()
    worker_kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: Runs in the monitor before each restart.
    before_reload: Callable[[], None] | None = None
    #: The worker says Ready itself (a server, once it listens); else it is ready at once.
    worker_announces_ready: bool = False
    #: Fork workers from a template that has the app's libraries imported already.
    preload: bool = True
    #: Library modules (with their submodules) the template never imports.
    preload_exclude: tuple[str, ...] = ()
    #: A change does not stop the worker: it is told, and leaves at a safe point (exit 75).
    cooperative: bool = False
    #: Stop a cooperative worker anyway this long after the change (seconds; None: never).
    cooperative_timeout: float | None = None
    #: The file monitor's factory; None: the best this machine has.
    monitor_factory: FileMonitorFactory | None = None
    #: The worker's ``sys.argv`` and environment; None: the monitor's (a stack's process
    #: has its own).
    argv: tuple[str, ...] | None = None
    environ: Mapping[str, str] | None = None
    #: Files or globs watched from the start, besides what the worker imports and reads.
    watch_files: tuple[str, ...] = ()
    #: Patterns of paths whose changes never restart anything.
    ignore_files: tuple[str, ...] = ()
    #: Globs of files pushed to open pages (stylesheets swapped) without a restart.
    static_files: tuple[str, ...] = ()
    #: Watch globs skip what the project's ``.gitignore`` files exclude.
    gitignore: bool = True

    def __post_init__(self) -> None:
        for name in ("reload_interval", "shutdown_interval", "drain_interval", "poll_interval",
                     "cooperative_timeout"):
            value = getattr(self, name)
            if value is not None:
                try:
                    seconds(value)
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
