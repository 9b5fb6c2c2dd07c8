"""Static pushes on a fake clock: one per save, after the save's last event."""

from __future__ import annotations

import os
from pathlib import Path

from devreload.monitor.pushes import StaticPushes


def test_a_push_waits_for_the_last_event_of_a_save(tmp_path: Path) -> None:
    css = tmp_path / "site.css"
    css.write_text("a {}")
    pushes = StaticPushes()
    pushes.changed(str(css), due=10.05)
    pushes.changed(str(css), due=10.08)
    assert pushes.deadline() == 10.08
    assert pushes.due(10.06) == []
    assert pushes.due(10.08) == [str(css)]
    assert pushes.deadline() is None


def test_a_file_as_it_was_at_its_last_push_is_not_pushed_again(tmp_path: Path) -> None:
    css = tmp_path / "site.css"
    css.write_text("a {}")
    pushes = StaticPushes()
    pushes.changed(str(css), due=1.0)
    assert pushes.due(1.0) == [str(css)]
    os.chmod(css, 0o600)  # vim sets the mode back after writing: nothing new to show
    pushes.changed(str(css), due=2.0)
    assert pushes.due(2.0) == []
    css.write_text("a { color: red }")
    pushes.changed(str(css), due=3.0)
    assert pushes.due(3.0) == [str(css)]


def test_a_file_gone_when_its_window_ends_is_not_pushed(tmp_path: Path) -> None:
    pushes = StaticPushes()
    pushes.changed(str(tmp_path / "gone.css"), due=1.0)
    assert pushes.due(1.0) == []
    assert pushes.deadline() is None
