"""Which server sections devreload serves itself, in process: ``egg:waitress#main`` read the
way waitress reads it, other runners recognised and named, ``[devreload] show_errors``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from devreload.errors import ConfigError
from devreload.servers import choice as servers
from devreload.serving import paste
from devreload.serving.ini import IniConfig
from devreload.serving.options import ServeOptions


def ini(tmp_path: Path, server: str, extra: str = "") -> IniConfig:
    path = tmp_path / "dev.ini"
    path.write_text(
        "[app:main]\nuse = call:nowhere:make_app\n\n[server:main]\n"
        + textwrap.dedent(server)
        + textwrap.dedent(extra)
    )
    return IniConfig(str(path))


def waitress(conf: dict[str, str]) -> ServeOptions:
    return ServeOptions.from_waitress_conf(conf, "dev.ini", "server:main")


@pytest.mark.parametrize(
    ("conf", "addresses"),
    [
        ({}, ["127.0.0.1:8080"]),  # waitress: 0.0.0.0:8080; devreload stays on loopback
        ({"port": "6543"}, ["127.0.0.1:6543"]),
        ({"host": "localhost"}, ["localhost:8080"]),
        ({"host": "0.0.0.0", "port": "6543"}, ["0.0.0.0:6543"]),
        ({"listen": "localhost:6543"}, ["localhost:6543"]),
        ({"listen": "127.0.0.1:7000 [::1]:7001"}, ["127.0.0.1:7000", "[::1]:7001"]),
        ({"listen": "*:6543"}, ["0.0.0.0:6543"]),
        ({"listen": "*:6543", "ipv4": "false"}, ["[::]:6543"]),
        ({"listen": "*:6543", "ipv6": "false"}, ["0.0.0.0:6543"]),
        ({"unix_socket": "/tmp/app.sock"}, ["unix:/tmp/app.sock"]),
    ],
)
def test_waitress_addresses(conf: dict[str, str], addresses: list[str]) -> None:
    options = waitress(conf)
    assert [str(a) for a in options.addresses] == addresses
    assert options.server == "waitress"
    assert options.server_options == {}


def test_every_other_key_is_a_waitress_option() -> None:
    conf = {
        "listen": "127.0.0.1:6543",
        "threads": "2",
        "url_scheme": "https",
        "trusted_proxy": "127.0.0.1",
        "trusted_proxy_headers": "x-forwarded-proto",
        "clear_untrusted_proxy_headers": "false",
        "ident": "myapp",
    }
    options = waitress(conf)
    assert dict(options.server_options) == {k: v for k, v in conf.items() if k != "listen"}
    converted = servers.server_options("waitress", options.server_options)
    assert converted["threads"] == 2
    assert converted["trusted_proxy_headers"] == {"x-forwarded-proto"}
    assert converted["clear_untrusted_proxy_headers"] is False
    assert (options.reload, options.live_reload, options.show_errors) == (False, True, None)


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        ({"listen": "127.0.0.1:1", "port": "2"}, "dev.ini: [server:main]: set either listen"),
        ({"listen": "127.0.0.1:1", "host": "x"}, "dev.ini: [server:main]: set either listen"),
        ({"unix_socket": "/a", "port": "2"}, "dev.ini: [server:main]: set either unix_socket"),
        ({"port": "http"}, "dev.ini: [server:main] port: bad listen address"),
        ({"listen": "1.2.3.4:x"}, "dev.ini: [server:main] listen: bad listen address"),
        ({"ipv4": "maybe"}, "dev.ini: [server:main] ipv4: 'maybe' is not true or false"),
        (
            {"listen": "127.0.0.1:1", "ipv4": "false"},
            "dev.ini: [server:main] ipv4: false, but 127.0.0.1:1 is an IPv4 address",
        ),
        (
            {"listen": "[::1]:1", "ipv6": "false"},
            "dev.ini: [server:main] ipv6: false, but [::1]:1 is an IPv6 address",
        ),
    ],
)
def test_bad_waitress_addresses_are_one_line(conf: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        waitress(conf)
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


def test_an_egg_waitress_ini_is_served_by_devreload(tmp_path: Path) -> None:
    config = ini(tmp_path, "use = egg:waitress#main\nlisten = 127.0.0.1:6543\nthreads = 3\n")
    context = config.server_context()
    assert config.is_waitress_server(context)
    assert not config.is_devreload_server(context)
    assert config.holds_sockets(context)
    options = config.serve_options(context)
    assert [str(a) for a in options.addresses] == ["127.0.0.1:6543"]
    assert options.server == "waitress"
    assert options.server_options == {"threads": "3"}
    assert options.watch_files == (config.path,)


@pytest.mark.parametrize("key", ["threadz", "reload", "reload_interval", "server", "sockets"])
def test_waitress_section_rejects_what_waitress_does_not_know(tmp_path: Path, key: str) -> None:
    config = ini(tmp_path, f"use = egg:waitress#main\nport = 6543\n{key} = 1\n")
    with pytest.raises(ConfigError) as info:
        config.serve_options(config.server_context())
    assert str(info.value).startswith(f"{config.path}: [server:main] {key}: ")
    assert str(info.value).endswith("(server: waitress)")


def test_another_runner_is_named_and_binds_by_itself(tmp_path: Path) -> None:
    config = ini(tmp_path, "use = call:wsgiref.simple_server:make_server\nport = 1\n")
    context = config.server_context()
    assert not config.holds_sockets(context)
    assert paste._runner_name(context) == "call:wsgiref.simple_server:make_server"
    assert str(paste._foreign_address(context)) == "127.0.0.1:1"
    assert config.serve_options(context).server_options == {}


def test_devreload_section_may_show_errors(tmp_path: Path) -> None:
    config = ini(
        tmp_path,
        "use = egg:waitress#main\nhost = 0.0.0.0\n",
        "\n[devreload]\nshow_errors = true\n",
    )
    assert config.serve_options(config.server_context()).show_errors is True


def test_another_runner_bind_is_where_it_answers(tmp_path: Path) -> None:
    config = ini(tmp_path, "use = call:wsgiref.simple_server:make_server\nbind = 127.0.0.1:9\n")
    assert str(paste._foreign_address(config.server_context())) == "127.0.0.1:9"
