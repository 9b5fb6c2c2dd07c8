"""The PasteDeploy glue, in process: ini loading, overrides, includes, settings, logging."""

from __future__ import annotations

import logging
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import webtest
from paste.deploy import loadwsgi

from devreload.errors import ConfigError
from devreload.serving import paste
from devreload.serving.ini import IniConfig
from devreload.serving.options import ServeOptions

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Path]:
    """A private copy of examples/, whose app modules are importable as ``app``."""
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    yield tmp_path / "examples"


@pytest.fixture(autouse=True)
def fresh_app_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every example names its module ``app``: forget it between tests."""
    monkeypatch.delitem(__import__("sys").modules, "app", raising=False)
    monkeypatch.setattr("sys.path", list(__import__("sys").path))


def test_wsgi_example_loads_and_answers(example: Path) -> None:
    config = IniConfig(str(example / "wsgi" / "development.ini"))
    response = webtest.TestApp(config.load_app()).get("/")
    assert response.status_int == 200
    assert response.text.startswith("Hello! Hello from a WSGI app")


def test_variables_win_over_default_everywhere(example: Path) -> None:
    config = IniConfig(
        str(example / "wsgi" / "development.ini"),
        overrides={"default_greeting": "Howdy", "http_port": "9999"},
    )
    assert webtest.TestApp(config.load_app()).get("/").text.startswith("Howdy!")
    settings = config.serve_options(config.server_context())
    assert [str(a) for a in settings.addresses] == ["127.0.0.1:9999"]


def test_include_example_pulls_settings_from_base(example: Path) -> None:
    config = IniConfig(str(example / "include" / "development.ini"))
    assert webtest.TestApp(config.load_app()).get("/").text == "Hello from base.ini\n"
    context = config.server_context()
    assert config.is_devreload_server(context)
    assert config.config_files() == [
        str(example / "include" / "development.ini"),
        str(example / "include" / "base.ini"),
    ]


def test_local_keys_override_the_included_file(example: Path) -> None:
    ini = write(
        example / "include" / "local.ini",
        """\
        [app:main]
        use = config:base.ini#main
        greeting = local wins
        """,
    )
    config = IniConfig(str(ini))
    assert webtest.TestApp(config.load_app()).get("/").text == "local wins\n"


def test_variables_reach_into_included_files_and_win_over_their_default(tmp_path: Path) -> None:
    write(tmp_path / "app.py", "def make_app(g, word='?'):\n    return lambda e, s: [word]\n")
    (tmp_path / "sub").mkdir()
    write(
        tmp_path / "sub" / "inner.ini",
        """\
        [DEFAULT]
        word_default = inner

        [app:main]
        use = call:app:make_app
        word = %(word_default)s
        """,
    )
    outer = write(tmp_path / "outer.ini", "[app:main]\nuse = config:sub/inner.ini\n")
    plain = IniConfig(str(outer))
    assert plain.server_name == "main"
    app_conf = plain._context(loadwsgi.APP, "app:main").config()
    assert app_conf["word"] == "inner"
    overridden = IniConfig(str(outer), overrides={"word_default": "cli"})
    assert overridden._context(loadwsgi.APP, "app:main").config()["word"] == "cli"
    assert overridden.config_files() == [str(outer), str(tmp_path / "sub" / "inner.ini")]


def test_config_files_follow_includes_recursively_without_loops(tmp_path: Path) -> None:
    write(tmp_path / "a.ini", "[app:main]\nuse = config:b.ini\n")
    write(tmp_path / "b.ini", "[app:main]\nuse = config:%(here)s/c.ini#main\n")
    write(tmp_path / "c.ini", "[filter:x]\nnext = config:a.ini\n[app:main]\nuse = egg:x\n")
    config = IniConfig(str(tmp_path / "a.ini"))
    assert config.config_files() == [str(tmp_path / n) for n in ("a.ini", "b.ini", "c.ini")]


def test_devreload_section_paths_are_relative_to_the_ini(tmp_path: Path) -> None:
    ini = write(
        tmp_path / "dev.ini",
        """\
        [DEFAULT]
        extra = more.cfg

        [devreload]
        watch_files =
            templates/*.html
            %(extra)s
        ignore_files = *.log
        """,
    )
    section = IniConfig(str(ini), overrides={"extra": "cli.cfg"}).devreload_section()
    expected = (str(tmp_path / "templates" / "*.html"), str(tmp_path / "cli.cfg"))
    assert section.watch_files == expected
    assert section.ignore_files == (str(tmp_path / "*.log"),)
    assert IniConfig(
        str(write(tmp_path / "none.ini", "[app:main]\n"))
    ).devreload_section() == ServeOptions()
    write(tmp_path / "bad.ini", "[devreload]\nwatch_file = x\n")
    with pytest.raises(ConfigError) as info:
        IniConfig(str(tmp_path / "bad.ini")).devreload_section()
    assert str(info.value) == f"{tmp_path}/bad.ini: [devreload] watch_file: unknown setting"


# --------------------------------------------------------------------------- settings


def test_server_settings_parse_every_key(tmp_path: Path) -> None:
    settings = ServeOptions.from_conf(
        {
            "listen": "127.0.0.1:7000 [::1]:7001",
            "reload": "true",
            "reload_interval": "0.2",
            "shutdown_interval": "3",
            "watch_files": "a.txt b/*.cfg",
            "ignore_files": "*.tmp",
            "server": "waitress",
            "threads": "2",
        },
        str(tmp_path / "dev.ini"),
        "server:main",
    )
    assert [str(a) for a in settings.addresses] == ["127.0.0.1:7000", "[::1]:7001"]
    assert settings.reload is True
    assert (settings.reload_interval, settings.shutdown_interval) == (0.2, 3.0)
    assert settings.watch_files == (str(tmp_path / "a.txt"), str(tmp_path / "b" / "*.cfg"))
    assert settings.ignore_files == (str(tmp_path / "*.tmp"),)
    assert settings.server == "waitress"
    assert settings.server_options == {"threads": "2"}
    default = ServeOptions.from_conf({}, "x.ini", "server:main")
    assert [str(a) for a in default.addresses] == ["127.0.0.1:8080"]
    assert default.reload is False
    hostport = ServeOptions.from_conf({"host": "0.0.0.0", "port": "6543"}, "x.ini", "server")
    assert [str(a) for a in hostport.addresses] == ["0.0.0.0:6543"]


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        ({"port": "abc"}, "dev.ini: [server:main] port: bad listen address"),
        ({"listen": "1.2.3.4:x"}, "dev.ini: [server:main] listen: bad listen address"),
        ({"listen": "a:1", "port": "2"}, "dev.ini: [server:main]: set either listen"),
        ({"reload": "maybe"}, "dev.ini: [server:main] reload: 'maybe' is not true or false"),
        ({"reload_interval": "-1"}, "dev.ini: [server:main] reload_interval: '-1' must not be"),
        ({"shutdown_interval": "x"}, "dev.ini: [server:main] shutdown_interval: 'x' is not a"),
        ({"server": "gunicorn"}, "dev.ini: [server:main] server: must be one of"),
    ],
)
def test_bad_settings_name_file_section_and_key(conf: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        ServeOptions.from_conf(conf, "dev.ini", "server:main")
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


def test_unknown_server_option_names_the_key_and_the_server(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        paste.server_runner(
            lambda environ, start_response: [], {"__file__": "/x/dev.ini"}, threadz="4"
        )
    assert str(info.value) == "/x/dev.ini: [server] threadz: unknown option (server: waitress)"


# --------------------------------------------------------------------------- loading errors


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.ini: no such file$"):
        IniConfig(str(tmp_path / "nope.ini")).server_context()


def test_malformed_ini_is_one_line(tmp_path: Path) -> None:
    ini = write(tmp_path / "bad.ini", "this is not an ini\n")
    with pytest.raises(ConfigError) as info:
        IniConfig(str(ini)).load_app()
    assert str(info.value).startswith(f"{ini}: ")
    assert "\n" not in str(info.value)


def test_missing_sections_name_the_section(tmp_path: Path) -> None:
    ini = write(tmp_path / "dev.ini", "[app:other]\nuse = egg:devreload\n")
    with pytest.raises(ConfigError, match=r"\[app:main\]"):
        IniConfig(str(ini)).load_app()
    with pytest.raises(ConfigError, match=r"\[server:main\]"):
        IniConfig(str(ini)).server_context()


def test_unknown_egg_names_it(tmp_path: Path) -> None:
    ini = write(tmp_path / "dev.ini", "[server:main]\nuse = egg:no_such_dist_xyz\n")
    with pytest.raises(ConfigError) as info:
        IniConfig(str(ini)).server_context()
    assert str(info.value) == f"{ini}: [server:main] use: unknown egg 'no_such_dist_xyz'"


def test_other_paste_servers_are_recognised(tmp_path: Path) -> None:
    ini = write(tmp_path / "dev.ini", "[server:main]\nuse = egg:waitress#main\nport = 1\n")
    config = IniConfig(str(ini))
    assert not config.is_devreload_server(config.server_context())


# --------------------------------------------------------------------------- logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    for handler in root.handlers[:]:
        if handler not in saved[0]:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved[1])


def test_logging_from_the_ini_keeps_devreload_logger_enabled(
    tmp_path: Path, restore_logging: None
) -> None:
    ini = write(
        tmp_path / "dev.ini",
        """\
        [loggers]
        keys = root

        [handlers]
        keys = file

        [formatters]
        keys = plain

        [logger_root]
        level = INFO
        handlers = file

        [handler_file]
        class = FileHandler
        args = (r'%(here)s/app.log', 'w')
        formatter = plain

        [formatter_plain]
        format = %(levelname)s %(name)s %(message)s
        """,
    )
    watched = logging.getLogger("devreload.test_child")
    IniConfig(str(ini)).setup_logging()
    assert not watched.disabled
    watched.info("still here")
    logging.getLogger().handlers[-1].flush()
    assert "INFO devreload.test_child still here" in (tmp_path / "app.log").read_text()


def test_bad_logging_sections_are_one_line(tmp_path: Path, restore_logging: None) -> None:
    ini = write(tmp_path / "dev.ini", "[loggers]\nkeys = root\n")
    with pytest.raises(ConfigError, match=r"dev\.ini: \[loggers\]: bad logging setup"):
        IniConfig(str(ini)).setup_logging()


def test_default_logging_when_the_ini_has_none(tmp_path: Path, restore_logging: None) -> None:
    for handler in logging.getLogger().handlers[:]:
        logging.getLogger().removeHandler(handler)
    IniConfig(str(write(tmp_path / "dev.ini", "[app:main]\n"))).setup_logging()
    root = logging.getLogger()
    assert root.level == logging.INFO and root.handlers
