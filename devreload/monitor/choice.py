"""Which launcher starts the workers: the platform's way (:mod:`devreload.platforms`),
unless ``DEVRELOAD_WORKER`` names another."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from devreload import platforms, processes
from devreload.log import Logger
from devreload.monitor.ahead import LAUNCHER_ENV, end_ahead
from devreload.monitor.forks import TemplateLauncher
from devreload.monitor.launch import ExitPool, Launcher, SpawnLauncher
from devreload.monitor.spares import PosixSpawner, SpareLauncher, Spawner

#: ``DEVRELOAD_WORKER=spawn`` starts every worker as a fresh interpreter.


def choose_launcher(log: Logger, preload: bool = True, exclude: Sequence[str] = (), *,
                    exits: ExitPool | None = None, output: int | None = None) -> Launcher:
    """Linux: the template, whose forked workers the monitor adopts (a subreaper); the
    portable paths, macOS and Windows: spawned workers with a spare. ``DEVRELOAD_WORKER=spawn``
    forces a fresh interpreter per worker. Launchers of one stack share their ``exits``;
    ``output`` is where the workers write, if not to the monitor's stdout and stderr."""
    platform = platforms.current()
    log.debug("platform: %s", platform.describe())
    fresh = os.environ.get(LAUNCHER_ENV) == "spawn"
    if not platform.adopts_orphans:
        return SpareLauncher(log, spawner(output), preload and not fresh, exclude)
    if processes.prctl(processes.PR_SET_CHILD_SUBREAPER, 1) and not fresh:
        return TemplateLauncher(log, preload, exclude, exits, output)
    end_ahead()
    return SpawnLauncher(exits, output)


def spawner(output: int | None = None) -> Spawner:
    """This platform's way to spawn workers."""
    if sys.platform == "win32":
        from devreload.monitor.windows import WindowsSpawner

        return WindowsSpawner(output=output)
    return PosixSpawner(platforms.current().stops_by_message, output)
