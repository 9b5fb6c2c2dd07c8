"""Listen addresses and binding, on real sockets."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest

from devreload import sockets as socks
from devreload.errors import AddressError, AddressInUseError


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("127.0.0.1:8000", "127.0.0.1", 8000),
        ("[::1]:9000", "::1", 9000),
        ("*:8080", "0.0.0.0", 8080),
        ("localhost:6543", "localhost", 6543),
        ("0.0.0.0:80", "0.0.0.0", 80),
        ("8001", "127.0.0.1", 8001),
        (":8002", "127.0.0.1", 8002),
        ("example.org", "example.org", 8080),
    ],
)
def test_parse_tcp_addresses(text: str, host: str, port: int) -> None:
    address = socks.parse_address(text)
    assert (address.host, address.port, address.unix_path) == (host, port, None)


def test_parse_unix_address(tmp_path: Path) -> None:
    address = socks.parse_address(f"unix:{tmp_path}/app.sock")
    assert address.unix_path == f"{tmp_path}/app.sock"
    assert str(address) == f"unix:{tmp_path}/app.sock"
    assert not address.is_public


@pytest.mark.parametrize("text", ["127.0.0.1:abc", "127.0.0.1:70000", "[::1", "unix:", "[::1]x"])
def test_bad_addresses_raise_a_typed_error_naming_the_address(text: str) -> None:
    with pytest.raises(AddressError) as info:
        socks.parse_address(text)
    assert repr(text) in str(info.value)
    assert "\n" not in str(info.value)


def test_parse_listen_takes_several_addresses() -> None:
    addresses = socks.parse_listen("127.0.0.1:8000 [::1]:8001, unix:/tmp/x.sock")
    assert [str(a) for a in addresses] == ["127.0.0.1:8000", "[::1]:8001", "unix:/tmp/x.sock"]
    with pytest.raises(AddressError):
        socks.parse_listen("  ")


def test_default_is_loopback_8080() -> None:
    address = socks.Address()
    assert str(address) == "127.0.0.1:8080"
    assert address.url == "http://127.0.0.1:8080"
    assert not address.is_public
    assert socks.make_address(None, None) == address
    assert socks.make_address("*", 80).is_public


def test_bind_listens_not_inheritable_with_reuseaddr_not_reuseport() -> None:
    sock = socks.bind(socks.make_address("127.0.0.1", 0))
    try:
        assert not sock.get_inheritable(), "a process the app starts must not keep the port"
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        if hasattr(socket, "SO_REUSEPORT"):
            assert not sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        # Connections wait in the backlog until someone accepts them.
        with socket.create_connection(sock.getsockname(), timeout=5):
            conn, _ = sock.accept()
            conn.close()
        assert socks.describe(sock) == f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def test_port_in_use_names_the_address() -> None:
    first = socks.bind(socks.make_address("127.0.0.1", 0))
    port = first.getsockname()[1]
    try:
        with pytest.raises(AddressInUseError) as info:
            socks.bind_all([socks.make_address("127.0.0.1", port)])
        message = str(info.value)
        assert f"127.0.0.1:{port}" in message
        assert "already in use" in message and "another port" in message
    finally:
        first.close()


def test_bind_all_is_all_or_nothing() -> None:
    taken = socks.bind(socks.make_address("127.0.0.1", 0))
    try:
        free = socks.make_address("127.0.0.1", 0)
        busy = socks.make_address("127.0.0.1", taken.getsockname()[1])
        with pytest.raises(AddressInUseError):
            socks.bind_all([free, busy])
    finally:
        taken.close()


def test_public_address_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="devreload"):
        bound = socks.bind_all([socks.parse_address("0.0.0.0:0")])
    socks.close_all(bound)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "public address" in warnings[0].getMessage()


def test_loopback_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="devreload"):
        socks.close_all(socks.bind_all([socks.parse_address("127.0.0.1:0")]))
    assert not caplog.records


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        sock = socks.bind(socks.parse_address("[::1]:0"))
    except AddressError as exc:
        pytest.skip(f"IPv6 loopback unavailable: {exc}")
    try:
        assert sock.family == socket.AF_INET6
        assert socks.describe(sock).startswith("http://[::1]:")
    finally:
        sock.close()


def test_unix_socket_bind_replaces_a_stale_file_and_detects_a_live_one(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    address = socks.parse_address(f"unix:{path}")
    stale = socks.bind(address)
    stale.close()  # the file stays behind, nobody listens
    assert path.exists()
    live = socks.bind(address)
    try:
        assert not live.get_inheritable()
        with pytest.raises(AddressInUseError):
            socks.bind(address)
    finally:
        live.close()
    path.unlink()
    path.write_text("not a socket")
    with pytest.raises(AddressError, match="not a socket"):
        socks.bind(address)
    os.unlink(path)


def test_a_unix_address_where_there_are_no_unix_sockets_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows's Python has no AF_UNIX: the address is refused with what to do instead."""
    monkeypatch.setattr(socks, "UNIX", None)
    address = socks.parse_address(f"unix:{tmp_path}/app.sock")
    with pytest.raises(AddressError) as caught:
        socks.bind(address)
    assert str(caught.value) == (f"cannot listen on unix:{tmp_path}/app.sock: this system has "
                                 "no unix sockets; listen on 127.0.0.1:PORT")
    assert not socks.mixes_unix_and_ip([socks.parse_address("127.0.0.1:0")])
