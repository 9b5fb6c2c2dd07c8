"""Listen addresses and the listening sockets the monitor binds once for all its workers.

The monitor owns the socket: it binds and listens before the first worker starts and hands
the same socket to every worker, so connections that arrive during a restart wait in the
kernel's backlog instead of being refused.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import socket
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from devreload.errors import AddressError, AddressInUseError
from devreload.log import LOGGER_NAME

#: The unix socket family; None where Python has none (Windows).
UNIX: int | None = getattr(socket, "AF_UNIX", None)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
BACKLOG = 2048


@dataclass(frozen=True)
class Address:
    """One place to listen: a TCP host and port, or a unix socket path."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    unix_path: str | None = None

    def __str__(self) -> str:
        if self.unix_path is not None:
            return f"unix:{self.unix_path}"
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Where a browser on this machine reaches it (wildcard hosts become loopback)."""
        if self.unix_path is not None:
            return str(self)
        host = reachable_host(self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def is_public(self) -> bool:
        """True when other machines may reach it (not loopback, not a unix socket)."""
        return self.unix_path is None and is_public_host(self.host)


def reachable_host(host: str) -> str:
    """Where this machine reaches a server listening on ``host``: a wildcard (every
    address of its family) is reached on that family's loopback."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def is_public_host(host: str) -> bool:
    """True unless ``host`` is a loopback address or ``localhost``."""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def any_public(places: Iterable[Address | socket.socket]) -> bool:
    """Whether any of ``places`` (addresses, or bound sockets) is reachable beyond this
    machine (so a traceback shown there would leak)."""
    return any(
        p.is_public if isinstance(p, Address)
        else p.family in (socket.AF_INET, socket.AF_INET6) and is_public_host(p.getsockname()[0])
        for p in places
    )


def parse_address(text: str) -> Address:
    """Parse ``host:port``, ``[::1]:port``, ``*:port``, ``:port``, ``port`` or ``unix:/path``."""
    spec = text.strip()
    if spec.startswith("unix:"):
        path = spec[len("unix:") :]
        if not path:
            raise AddressError(f"bad listen address {text!r}: a unix socket needs a path")
        return Address(host="", port=0, unix_path=os.path.abspath(path))
    if spec.startswith("["):
        host, sep, rest = spec[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise AddressError(f"bad listen address {text!r}: expected [ipv6]:port")
        port_text = rest[1:] if rest else str(DEFAULT_PORT)
    elif ":" in spec:
        host, _, port_text = spec.rpartition(":")
    elif spec.isdigit():
        host, port_text = "", spec
    else:
        host, port_text = spec, str(DEFAULT_PORT)
    return make_address(host, port_text, text)


def make_address(host: str | None, port: int | str | None, origin: str | None = None) -> Address:
    """An address from a separate host and port: ``*`` means all IPv4, empty means 127.0.0.1."""
    shown = origin if origin is not None else f"{host}:{port}"
    host = (host or "").strip() or DEFAULT_HOST
    if host == "*":
        host = "0.0.0.0"
    if port is None or (isinstance(port, str) and not port.strip()):
        port = DEFAULT_PORT
    try:
        number = int(port)
    except ValueError:
        raise AddressError(f"bad listen address {shown!r}: port {port!r} is not a number") from None
    if not 0 <= number <= 65535:
        raise AddressError(f"bad listen address {shown!r}: port {number} is out of range")
    return Address(host=host, port=number)


def mixes_unix_and_ip(places: Iterable[Address | socket.socket]) -> bool:
    """Whether ``places`` (addresses, or bound sockets) hold a unix socket and an IP
    address together, which waitress cannot serve at once."""
    unix = {
        p.unix_path is not None if isinstance(p, Address) else p.family == UNIX
        for p in places
    }
    return len(unix) == 2


def parse_listen(text: str | Iterable[str]) -> list[Address]:
    """Every address in a space- or comma-separated list (waitress's ``listen`` syntax)."""
    parts = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    if not parts:
        raise AddressError(
            "no listen address given (expected host:port, [::1]:port or unix:/path)"
        )
    return [parse_address(part) for part in parts]


def bind(address: Address) -> socket.socket:
    """Bind and listen on ``address``; workers get the socket explicitly, never by
    inheritance (a process the app starts must not keep the port).

    SO_REUSEADDR lets a restarted monitor bind at once; SO_REUSEPORT is never set, so a
    second server on the same port fails here instead of silently sharing it.
    """
    if address.unix_path is not None:
        return _bind_unix(address)
    try:
        infos = socket.getaddrinfo(
            address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise AddressError(f"cannot listen on {address}: {exc.strerror}") from None
    family, socktype, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUseError(str(address)) from None
        raise AddressError(f"cannot listen on {address}: {exc.strerror or exc}") from None
    return sock


def _bind_unix(address: Address) -> socket.socket:
    path = address.unix_path
    assert path is not None
    if UNIX is None:
        raise AddressError(f"cannot listen on {address}: this system has no unix sockets; "
                           "listen on 127.0.0.1:PORT")
    if os.path.exists(path):
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise AddressError(f"cannot listen on {address}: the path exists and is not a socket")
        if _unix_socket_answers(path):
            raise AddressInUseError(str(address))
        os.unlink(path)
    sock = socket.socket(UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise AddressError(f"cannot listen on {address}: {exc.strerror or exc}") from None
    return sock


def _unix_socket_answers(path: str) -> bool:
    assert UNIX is not None
    with socket.socket(UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


def bind_all(addresses: Iterable[Address]) -> list[socket.socket]:
    """Bind every address (all or none) and warn once for each public one."""
    sockets: list[socket.socket] = []
    try:
        for address in addresses:
            sockets.append(bind(address))
            if address.is_public:
                logging.getLogger(LOGGER_NAME).warning(
                    "listening on %s, a public address: other machines can reach this "
                    "development server",
                    address,
                )
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def describe(sock: socket.socket) -> str:
    """The URL (or unix path) a bound socket answers on, for log lines and the browser."""
    if sock.family == UNIX:
        return f"unix:{sock.getsockname()}"
    host, port = sock.getsockname()[:2]
    host = reachable_host(host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def close_all(sockets: Iterable[socket.socket]) -> None:
    """Close sockets, ignoring ones already closed."""
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.close()
