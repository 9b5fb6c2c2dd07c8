"""The launchers, with real processes: what the monitor relies on when it signals a worker."""

from __future__ import annotations

import logging
import os
import signal

from helpers import pid_alive, wait_until

from devreload.monitor.forks import TemplateLauncher
from devreload.wire.channel import Channel


def test_a_forked_worker_leads_its_group_before_its_pid_is_known() -> None:
    """The monitor signals a worker's group: one just forked must get a SIGTERM sent at
    once (a change during its start), not lose it to a group not made yet."""
    launcher = TemplateLauncher(logging.getLogger("test"))
    pids: list[int] = []
    try:
        for _ in range(20):
            ours, theirs = Channel.pair()
            pid = launcher.start(theirs, [])
            theirs.close()
            pids.append(pid)
            assert os.getpgid(pid) == pid
            launcher.signal(pid, signal.SIGKILL)
            ours.close()

        def all_reaped() -> bool:
            launcher.reap()
            return not any(map(pid_alive, pids))

        wait_until(all_reaped)
    finally:
        for pid in pids:
            launcher.signal(pid, signal.SIGKILL)
        launcher.close()
