"""The one place that knows the platform: which way each mechanism that differs between
Linux, macOS and Windows works here.

Every other module asks :func:`current` instead of reading ``sys.platform`` for a
choice, so that ``-v`` can say in one line how this run works, and so that
``DEVRELOAD_PORTABLE=1`` can make a Linux run take the paths macOS and Windows take
wherever those can run on Linux (the tests run both ways).
"""

from __future__ import annotations

import os
import sys

#: ``DEVRELOAD_PORTABLE=1``: on Linux, take the paths the other platforms take.
PORTABLE_ENV = "DEVRELOAD_PORTABLE"


class Platform:
    """How each mechanism works on one platform. A plain class, not a dataclass:
    ``python -m devreload`` asks it before spawning the worker template, ahead of any
    heavier import."""

    def __init__(self, name: str, *, forks: bool, adopts_orphans: bool, passes_fds: bool,
                 stops_by_message: bool, job_objects: bool, file_events: str,
                 recursive_watches: bool, case_insensitive_paths: bool = False) -> None:
        self.name = name
        #: Workers are forked from a warm template (else spawned, with a spare spawned
        #: ahead).
        self.forks = forks
        #: Workers are child subreapers that die with the monitor (``prctl``), and the
        #: monitor finds what they left behind in ``/proc``.
        self.adopts_orphans = adopts_orphans
        #: Descriptors travel over the channel (``SCM_RIGHTS``); else sockets are shared by
        #: the OS's own means (``socket.share``) or inherited at spawn.
        self.passes_fds = passes_fds
        #: A worker is asked to stop over its channel before any signal.
        self.stops_by_message = stops_by_message
        #: Workers run in a job object that ends them and all they start with the monitor.
        self.job_objects = job_objects
        #: The OS's own file events: ``inotify`` (devreload's reader) or ``watchdog``.
        self.file_events = file_events
        #: Each root is watched with one recursive stream (else one watch per folder).
        self.recursive_watches = recursive_watches
        #: File names are compared without case (the default of APFS and NTFS).
        self.case_insensitive_paths = case_insensitive_paths

    def __repr__(self) -> str:
        return f"<Platform {self.name}>"

    def describe(self) -> str:
        """The line ``-v`` prints."""
        start = "forked from a template" if self.forks else "spawned, with a spare"
        stop = "a message over the channel" if self.stops_by_message else "SIGTERM"
        ends = ("a job object" if self.job_objects else
                "subreaper and janitor" if self.adopts_orphans else "process groups and janitor")
        watch = "recursive roots" if self.recursive_watches else "one watch per folder"
        return (f"{self.name}: workers {start}, stopped by {stop}, ended with the monitor by "
                f"{ends}; file events by {self.file_events}, {watch}")


LINUX = Platform("linux", forks=True, adopts_orphans=True, passes_fds=True,
                 stops_by_message=False, job_objects=False, file_events="inotify",
                 recursive_watches=False)
#: What ``DEVRELOAD_PORTABLE=1`` runs on Linux: macOS's choices, and Windows's stop.
PORTABLE = Platform("linux (portable)", forks=False, adopts_orphans=False, passes_fds=True,
                    stops_by_message=True, job_objects=False, file_events="watchdog",
                    recursive_watches=True)
MACOS = Platform("macOS", forks=False, adopts_orphans=False, passes_fds=True,
                 stops_by_message=False, job_objects=False, file_events="watchdog",
                 recursive_watches=True, case_insensitive_paths=True)
WINDOWS = Platform("Windows", forks=False, adopts_orphans=False, passes_fds=False,
                   stops_by_message=True, job_objects=True, file_events="watchdog",
                   recursive_watches=True, case_insensitive_paths=True)


def current() -> Platform:
    """This platform, or the portable paths on Linux when ``DEVRELOAD_PORTABLE=1``."""
    if sys.platform == "win32":
        return WINDOWS
    if sys.platform == "darwin":
        return MACOS
    if os.environ.get(PORTABLE_ENV, "") not in ("", "0"):
        return PORTABLE
    return LINUX
