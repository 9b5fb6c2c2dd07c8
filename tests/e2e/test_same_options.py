"""The watch options mean the same on every entry: ``run``, ``serve INI`` and
``serve MODULE:APP``, before or after the target, with a space or an ``=``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import save_like_editor
from served import SERVING_RE, Spawn, wait_body

OPTIONS = ["-v", "-w", "watched/*.txt", "--ignore=watched/skip*", "--shutdown-interval", "7",
           "--reload-interval=0.05", "--monitor", "polling"]
ENTRIES = {
    "run": (["run", *OPTIONS, "app_basic.py"], ["app_basic.py", "helper.py", "ignored_mod.py"]),
    "serve INI": (["serve", "serve_token.ini", "--reload", *OPTIONS],
                  ["serve_apps.py", "serve_token.ini"]),
    "serve MODULE:APP": (["serve", *OPTIONS[:4], "serve_apps:wsgi_app", "--reload",
                          "--port", "0", *OPTIONS[4:]], ["serve_apps.py"]),
}


@pytest.mark.parametrize("entry", ENTRIES)
def test_watch_and_monitor_options_work_on_every_entry(
    spawn: Spawn, project: Path, entry: str
) -> None:
    argv, apps = ENTRIES[entry]
    (project / "watched").mkdir()
    (project / "watched" / "a.txt").write_text("a")
    proc = spawn([sys.executable, "-m", "devreload", *argv], apps=apps)
    if entry == "run":
        proc.wait_ready()
    else:
        wait_body(proc.wait_for(SERVING_RE)[1], "one")
    proc.wait_for(r"using PollingFileMonitor; reload interval 0.05 s, shutdown interval 7 s; "
                  r"also watching: (serve_token.ini )?watched/\*\.txt; "
                  r"ignoring: watched/skip\*$", start=0)
    mark = len(proc.lines)
    save_like_editor(project / "watched" / "skip.txt", "skipped")
    save_like_editor(project / "watched" / "a.txt", "changed")
    proc.wait_for(r"(\S+) changed; restarted in \d+ ms", start=mark)
    assert proc.count(r"watched/a\.txt changed; restarted in", start=mark) == 1
    assert proc.count(r"skip\.txt", start=mark) == 0
