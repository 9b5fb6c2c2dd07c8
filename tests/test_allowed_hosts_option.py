"""``allowed_hosts`` from every way in (the ini's server section and ``[devreload]``,
``--allowed-host``, ``serve()``) reaches the monitor's error page and the worker's wrappers."""

from __future__ import annotations

import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from logrecords import devreload_logger_as_it_was

from devreload import sockets
from devreload.cli import build_parser
from devreload.monitor.launch import SpawnLauncher
from devreload.monitor.reloader import ServingReloader
from devreload.serving import serve as serving
from devreload.serving.ini import IniConfig
from devreload.serving.options import ServeOptions
from devreload.web.livereload import HUB


@pytest.fixture(autouse=True)
def _logger_as_it_was() -> Iterator[None]:
    with devreload_logger_as_it_was():
        yield


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_the_server_section_and_the_devreload_section_add_up(tmp_path: Path) -> None:
    ini = write(
        tmp_path / "dev.ini",
        """\
        [app:main]
        use = call:nowhere:app

        [server:main]
        use = egg:devreload
        allowed_hosts = myapp.test .dev.example

        [devreload]
        allowed_hosts =
            *.tunnel.example
        """,
    )
    config = IniConfig(str(ini), command_line=ServeOptions(allowed_hosts=("cli.example",)))
    options = config.serve_options(config.server_context())
    assert options.allowed_hosts == (
        "myapp.test", ".dev.example", "*.tunnel.example", "cli.example"
    )
    assert "allowed_hosts" not in options.server_options  # devreload's, not waitress's


def test_a_waitress_section_takes_them_from_devreload(tmp_path: Path) -> None:
    ini = write(
        tmp_path / "dev.ini",
        """\
        [app:main]
        use = call:nowhere:app

        [server:main]
        use = egg:waitress#main
        listen = localhost:6543

        [devreload]
        allowed_hosts = myapp.test
        """,
    )
    config = IniConfig(str(ini))
    assert config.serve_options(config.server_context()).allowed_hosts == ("myapp.test",)


def test_the_command_line_repeats_the_option() -> None:
    args = build_parser().parse_args(
        ["serve", "--allowed-host", "a.test", "--allowed-host", ".b.test", "dev.ini"]
    )
    assert args.allowed_hosts == ["a.test", ".b.test"]
    assert build_parser().parse_args(["serve", "dev.ini"]).allowed_hosts == []


def test_serve_passes_them_on(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[ServeOptions] = []
    monkeypatch.setattr(serving, "serve_app", lambda app, options: seen.append(options))
    serving.serve("main:app", allowed_hosts=["myapp.test"])
    assert seen[0].allowed_hosts == ("myapp.test",)


def test_the_monitor_gives_them_to_its_error_page(monkeypatch: pytest.MonkeyPatch) -> None:
    made: dict[str, Any] = {}

    class Recorded(ServingReloader):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, launcher=SpawnLauncher(), **kw)  # no template, no reaper

        def run(self) -> int:
            made["page"] = self.error_page
            return 0

    monkeypatch.setattr(serving, "ServingReloader", Recorded)
    monkeypatch.setattr(serving, "announce", lambda bound, browser=False: None)
    options = ServeOptions(addresses=(sockets.make_address("127.0.0.1", 0),),
                           allowed_hosts=("myapp.test",))
    assert serving.run_monitor(options, "nowhere:main") == 0
    assert made["page"].allowed_hosts == ("myapp.test",)


def test_the_worker_gives_them_to_its_wrappers(monkeypatch: pytest.MonkeyPatch) -> None:
    served: dict[str, Any] = {}
    monkeypatch.setattr(serving, "serve_on_sockets",
                        lambda app, *args, **kw: served.update(app=app))
    saved = HUB.allowed_hosts

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise AssertionError("not called")

    try:
        with socket.socket() as sock:
            serving._serve(app, [sock], ServeOptions(allowed_hosts=("myapp.test",)),
                           live_reload=True)
        assert "myapp.test" in HUB.allowed_hosts  # the stream (and waitress's channel)
        assert served["app"].app.allowed_hosts == ("myapp.test",)  # the request error page
    finally:
        HUB.allowed_hosts = saved
