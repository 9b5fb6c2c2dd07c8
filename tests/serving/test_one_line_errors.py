"""Bad input as one line, in process (issue 11): an app module that does not import, a
factory that returns no app, server options no server takes, listen addresses that
cannot work, a bad DEVRELOAD_MONITOR, and the example ini's ``greeting=Howdy``."""

from __future__ import annotations

import logging
import re
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import webtest

from devreload.errors import (
    AppModuleError,
    ConfigError,
    MonitorChoiceError,
    ServerOptionError,
)
from devreload.filemon import choice as filemon
from devreload.servers import choice as servers
from devreload.servers import uvicorn as server_uvicorn
from devreload.serving import paste
from devreload.serving.apps import load_app
from devreload.serving.ini import IniConfig
from devreload.serving.options import ServeOptions
from devreload.sockets import mixes_unix_and_ip, parse_address, parse_listen
from devreload.web.kinds import NOT_AN_APP, is_app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(autouse=True)
def fresh_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixture apps are modules named here: forget them (and sys.path) between tests."""
    for name in ("app", "oneline_app", "oneline_mon"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr("sys.path", list(sys.path))


def ini(tmp_path: Path, app: str, use: str = "call:app:make") -> Path:
    (tmp_path / "app.py").write_text(textwrap.dedent(app))
    path = tmp_path / "dev.ini"
    path.write_text(f"[app:main]\nuse = {use}\n\n[server:main]\nuse = egg:devreload\n")
    return path


# --------------------------------------------------------------------------- the app module


@pytest.mark.parametrize(
    ("source", "use", "message"),
    [
        ("def make(g):\n    x = = 1\n", "call:app:make",
         "importing the app failed at app.py:2: SyntaxError: invalid syntax (app.py, line 2)"),
        ("import no_such_dependency_xyz\n", "call:app:make",
         "importing the app failed at app.py:1 in <module>: ModuleNotFoundError: No module "
         "named 'no_such_dependency_xyz'"),
        ("raise RuntimeError('no settings')\n", "call:app:make",
         "importing the app failed at app.py:1 in <module>: RuntimeError: no settings"),
        ("def make(g):\n    pass\n", "call:no_such_module_xyz:make",
         "cannot import the app: No module named 'no_such_module_xyz'"),
        ("def make(g):\n    pass\n", "call:app:nope",
         "cannot import the app: module 'app' has no attribute 'nope'"),
    ],
    ids=["syntax", "missing-dependency", "raises", "missing-module", "missing-name"],
)
def test_an_app_module_that_does_not_import_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, use: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path = ini(tmp_path, source, use)
    with pytest.raises(AppModuleError) as raised:
        IniConfig(str(path)).load_app()
    assert str(raised.value) == f"{path}: [app:main]: {message}"
    assert isinstance(raised.value, ConfigError)


@pytest.mark.parametrize(("returned", "shown"), [("None", "None"), ("42", "42 (of type int)")])
def test_a_factory_that_returns_no_app_is_refused_naming_it(
    tmp_path: Path, returned: str, shown: str
) -> None:
    path = ini(tmp_path, f"def make(global_config, **settings):\n    return {returned}\n")
    with pytest.raises(ConfigError) as raised:
        IniConfig(str(path)).load_app()
    assert str(raised.value) == (
        f"{path}: [app:main]: the app factory app:make returned {shown}, "
        "not an app (a WSGI or ASGI callable)"
    )


def test_one_check_for_what_an_app_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_app(lambda environ, start_response: [])
    assert is_app(type("App", (), {"__call__": lambda self, e, s: []})())
    assert not is_app(None) and not is_app(42)
    # The import-string path says it with the same words.
    (tmp_path / "oneline_app.py").write_text("app = None\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(Exception, match=re.escape(f"is {NOT_AN_APP} but of type NoneType")):
        load_app("oneline_app:app")


# --------------------------------------------------------------------------- server options


def test_uvicorn_options_that_take_a_string_keep_it() -> None:
    converted = server_uvicorn.convert_options(
        {"log_level": "info", "root_path": "/x", "timeout_keep_alive": "7", "access_log": "no"}
    )
    assert converted["log_level"] == "info"
    assert converted["root_path"] == "/x"
    assert converted["timeout_keep_alive"] == 7
    assert converted["access_log"] is False
    assert server_uvicorn.convert_options({"log_level": "10"})["log_level"] == 10
    assert server_uvicorn.convert_options({"log_level": ""})["log_level"] is None
    with pytest.raises(ServerOptionError, match=r"bad value 'many'"):
        server_uvicorn.convert_options({"timeout_keep_alive": "many"})


def test_options_no_server_takes_are_refused_before_the_app_is_known() -> None:
    servers.check_any({"threads": "4"})  # waitress's
    servers.check_any({"log_level": "info"})  # uvicorn's
    with pytest.raises(ServerOptionError) as raised:
        servers.check_any({"threadz": "4"})
    assert str(raised.value) == "threadz: unknown option (server: waitress or uvicorn)"


# --------------------------------------------------------------------------- listen


def test_an_empty_listen_is_an_error_not_the_default() -> None:
    with pytest.raises(ConfigError) as raised:
        ServeOptions.from_conf({"listen": ""}, "dev.ini", "server:main")
    assert str(raised.value) == (
        "dev.ini: [server:main] listen: no listen address given "
        "(expected host:port, [::1]:port or unix:/path)"
    )
    with pytest.raises(ConfigError, match=r"\[server:main\] listen: no listen address"):
        ServeOptions.from_waitress_conf({"listen": " "}, "dev.ini", "server:main")
    assert ServeOptions.from_conf({}, "dev.ini", "server:main").addresses == (parse_address(""),)


def test_waitress_refuses_a_unix_socket_beside_ip_addresses() -> None:
    mixed = parse_listen("unix:/tmp/x.sock 127.0.0.1:0")
    assert mixes_unix_and_ip(mixed)
    assert not mixes_unix_and_ip(parse_listen("127.0.0.1:0 [::1]:0"))

    def app(environ: object, start_response: object) -> list[bytes]:
        return []

    with pytest.raises(ServerOptionError) as raised:
        servers.check(app, "auto", {}, mixed)
    assert raised.value.key == "listen" and raised.value.server == "waitress"

    async def asgi(scope: object, receive: object, send: object) -> None: ...

    assert servers.check(asgi, "auto", {}, mixed) == "uvicorn"  # uvicorn serves both


class Lines(logging.Handler):
    """devreload's log lines, whatever its logger's propagation."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_an_edited_address_is_reported_once_per_edit(tmp_path: Path) -> None:
    path = tmp_path / "dev.ini"
    path.write_text("[server:main]\nuse = egg:devreload\nlisten = 127.0.0.1:7001\n")
    config = IniConfig(str(path))
    options = config.serve_options(config.server_context())
    before_reload = paste._address_edits(config, options.addresses)
    logger = logging.getLogger("devreload")
    lines = Lines()
    logger.addHandler(lines)
    try:
        before_reload()  # unchanged: nothing to say
        assert lines.messages == []
        path.write_text("[server:main]\nuse = egg:devreload\nlisten = 127.0.0.1:7002\n")
        before_reload()
        before_reload()  # the same edit again: said once
        path.write_text("[server:main]\nuse = egg:devreload\nlisten = \n")
        before_reload()  # a broken ini: the worker says what is wrong
    finally:
        logger.removeHandler(lines)
    assert len(lines.messages) == 1
    assert lines.messages[0].endswith(
        "dev.ini: [server:main] now listens on 127.0.0.1:7002, but devreload still serves on "
        "127.0.0.1:7001: the monitor binds once, so an address change needs a restart of "
        "devreload"
    )


# --------------------------------------------------------------------------- DEVRELOAD_MONITOR


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("fsevents", "DEVRELOAD_MONITOR='fsevents' is not a file monitor; use inotify, watchdog, "
         "watchman, polling, or a dotted path to a factory (pkg.module.factory)"),
        ("no_such_mon_xyz.make", "DEVRELOAD_MONITOR='no_such_mon_xyz.make': cannot import "
         "'no_such_mon_xyz.make': no module named 'no_such_mon_xyz'; use inotify, watchdog, "
         "watchman, polling, or a dotted path to a factory (pkg.module.factory)"),
    ],
)
def test_a_bad_monitor_choice_is_one_line(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv(filemon.MONITOR_ENV, value)
    with pytest.raises(MonitorChoiceError) as raised:
        filemon.find_default_monitor_factory()
    assert str(raised.value) == message


def test_a_monitor_factory_in_the_current_folder_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "oneline_mon.py").write_text("def make(callback, **kw):\n    return 'made'\n")
    monkeypatch.chdir(tmp_path)
    # As under the ``devreload`` script: neither the folder nor "" is on sys.path.
    monkeypatch.setattr("sys.path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.setenv(filemon.MONITOR_ENV, "oneline_mon.make")
    made: object = filemon.find_default_monitor_factory()(_nowhere)  # the factory's own return
    assert made == "made"
    assert str(tmp_path) not in sys.path  # only for resolving the factory


# --------------------------------------------------------------------------- the example


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Path]:
    shutil.copytree(EXAMPLES / "wsgi", tmp_path / "wsgi")
    yield tmp_path / "wsgi" / "development.ini"


def test_the_readme_greeting_override_changes_the_greeting(example: Path) -> None:
    for overrides, expected in [
        ({}, "Hello!"),
        ({"greeting": "Howdy"}, "Howdy!"),  # the README's example
        ({"default_greeting": "Yo"}, "Yo!"),
    ]:
        sys.modules.pop("app", None)
        config = IniConfig(str(example), overrides=overrides)
        assert webtest.TestApp(config.load_app()).get("/").text.startswith(expected), overrides


def _nowhere(path: str, final: bool = False) -> None:
    """A monitor callback for factories that are only called."""
