"""The Host rule of devreload's own pages (DNS rebinding guard), as one table."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from logrecords import Records, devreload_logger_as_it_was, devreload_records

from devreload.web import hosts
from devreload.web.hosts import host_allowed, refusal

ALLOWED_BY_DEFAULT = [
    "localhost",
    "localhost:8080",
    "LOCALHOST:6543",
    "localhost.",
    "app.localhost",
    "a.b.localhost:8000",
    "127.0.0.1",
    "127.0.0.1:8080",
    "10.0.0.7:80",
    "0.0.0.0:8080",
    "[::1]",
    "[::1]:8080",
    "[fe80::1%25eth0]:80",
    "[2001:db8::1]:443",
    "",  # no Host at all (an HTTP/1.0 tool): a browser always sends one
    None,
]
REFUSED_BY_DEFAULT = [
    "attacker.example",
    "attacker.example:8080",
    "localhost.attacker.example",
    "notlocalhost",
    "evil-localhost",
    "127.0.0.1.nip.io",
    "::1",  # IPv6 without brackets is no Host
    "[::1",
    "[::1]x",
    "[not-an-ip]:80",
    "localhost:http",
    "localhost:80:80",
    "a b",
    "user@localhost",
    "127.1",
    "example.com/x",
]


@pytest.mark.parametrize("host", ALLOWED_BY_DEFAULT)
def test_answered_without_any_allowed_name(host: str | None) -> None:
    assert host_allowed(host)


@pytest.mark.parametrize("host", REFUSED_BY_DEFAULT)
def test_refused_without_any_allowed_name(host: str) -> None:
    assert not host_allowed(host)


@pytest.mark.parametrize(
    ("host", "allowed", "expected"),
    [
        ("myapp.test", ["myapp.test"], True),
        ("myapp.test:8080", ["MyApp.Test"], True),
        ("myapp.test", ["myapp.test:8080"], True),  # a port in the entry is ignored
        ("other.test", ["myapp.test"], False),
        ("sub.myapp.test", ["myapp.test"], False),
        # A leading dot: the name and its subdomains (Django's ALLOWED_HOSTS).
        ("example.com", [".example.com"], True),
        ("a.b.example.com:80", [".example.com"], True),
        ("badexample.com", [".example.com"], False),
        # *. : subdomains only.
        ("a.example.com", ["*.example.com"], True),
        ("example.com", ["*.example.com"], False),
        ("badexample.com", ["*.example.com"], False),
        # * : any name (still a well-formed one).
        ("anything.at.all", ["*"], True),
        ("::1", ["*"], False),
        # Empty entries allow nothing more.
        ("attacker.example", ["", "  "], False),
        ("attacker.example", ["other.test", "attacker.example"], True),
    ],
)
def test_allowed_names(host: str, allowed: list[str], expected: bool) -> None:
    assert host_allowed(host, allowed) is expected


@pytest.fixture(autouse=True)
def _logger_as_it_was() -> Iterator[None]:
    with devreload_logger_as_it_was():
        yield


@pytest.fixture
def devreload_log() -> Iterator[Records]:
    with devreload_records() as records:
        yield records


def test_the_refusal_says_how_to_allow_the_name_and_is_logged_once(
    devreload_log: Records,
) -> None:
    hosts._warned.discard("refused-once.example")
    line = refusal("refused-once.example:8080")
    assert refusal("refused-once.example") == line
    assert line == (
        "devreload: Host 'refused-once.example' is not allowed; "
        "add it with --allowed-host / allowed_hosts"
    )
    logged = [r for r in devreload_log.records if "refused-once.example" in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelno == logging.WARNING


def test_the_refusal_shows_a_hostile_name_harmlessly() -> None:
    line = refusal("\x1b[31mx" + "a" * 500)
    assert "\x1b" not in line and len(line) < 250
