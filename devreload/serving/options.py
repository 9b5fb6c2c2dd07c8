"""Everything about serving, in one frozen object, with each default written once.

The command line, the ini (``[server:main] use = egg:devreload`` and ``[devreload]``)
and ``serve()``'s keyword arguments each build a :class:`ServeOptions` once; the monitor
side and the worker side of serving both take it whole.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from devreload.errors import AddressError, ConfigError, SettingValueError
from devreload.filemon.choice import monitor_name_problem
from devreload.monitor.settings import ReloadSettings
from devreload.servers.base import Bounds
from devreload.servers.choice import SERVERS
from devreload.sockets import Address, any_public, make_address, parse_address, parse_listen
from devreload.values import conf_bool, conf_seconds

#: The ``egg:devreload`` keys devreload reads itself; every other key goes to the server.
OWN_KEYS = frozenset(
    {
        "listen",
        "host",
        "port",
        "reload",
        "reload_interval",
        "shutdown_interval",
        "drain_interval",
        "poll_interval",
        "show_errors",
        "live_reload",
        "static_files",
        "watch_files",
        "ignore_files",
        "server",
        "preload",
        "preload_exclude",
        "allowed_hosts",
        "monitor",
        "gitignore",
    }
)
#: The ``use = egg:waitress#main`` keys that say where to listen: devreload binds those itself,
#: once, in the monitor. Every other key of such a section is one of waitress's adjustments.
WAITRESS_ADDRESS_KEYS = frozenset({"listen", "host", "port", "unix_socket", "ipv4", "ipv6"})


#: How :meth:`ServeOptions.merged` combines a field of several layers (a server section,
#: ``[devreload]``, the command line); a field without a rule is the first layer's.
EVERY_LAYERS = {"merge": "every"}  # what each layer adds
UNLESS_ONE_SAYS_NO = {"merge": "all"}  # on unless a layer turns it off
LAST_SET = {"merge": "last"}  # the last layer that sets it (to other than the default)


@dataclass(frozen=True)
class ServeOptions:
    """How to serve an app, with or without reload."""

    #: Where to listen; the monitor binds these once and holds them across restarts.
    addresses: tuple[Address, ...] = (Address(),)
    #: Restart the app on every change of its code, its config or a watched file.
    reload: bool = False
    #: The quiet window that folds a burst of changes into one restart (seconds).
    reload_interval: float = field(default=ReloadSettings.reload_interval, metadata=LAST_SET)
    #: How long a worker may take to stop before it is killed (seconds).
    shutdown_interval: float = field(default=ReloadSettings.shutdown_interval,
                                     metadata=LAST_SET)
    #: How long an old worker may finish its requests once the next one serves (seconds).
    drain_interval: float = field(default=ReloadSettings.drain_interval, metadata=LAST_SET)
    #: How often a polling file monitor looks, at the most (seconds).
    poll_interval: float = ReloadSettings.poll_interval
    #: Extra files or globs to watch, absolute.
    watch_files: tuple[str, ...] = field(default=(), metadata=EVERY_LAYERS)
    #: Patterns of paths whose changes never restart anything.
    ignore_files: tuple[str, ...] = field(default=(), metadata=EVERY_LAYERS)
    #: Globs of files pushed to open pages (stylesheets swapped) without a restart.
    static_files: tuple[str, ...] = field(default=(), metadata=EVERY_LAYERS)
    #: Open pages follow every restart (under reload only).
    live_reload: bool = field(default=True, metadata=UNLESS_ONE_SAYS_NO)
    #: Tracebacks on the error page; None shows them on loopback addresses only.
    show_errors: bool | None = field(default=None, metadata=LAST_SET)
    #: Open the app in a web browser once it answers.
    browser: bool = False
    #: Fork workers from a template that has the app's libraries imported already.
    preload: bool = field(default=True, metadata=UNLESS_ONE_SAYS_NO)
    #: Library modules (with their submodules) the template never imports.
    preload_exclude: tuple[str, ...] = field(default=(), metadata=EVERY_LAYERS)
    #: Names devreload's own pages answer besides localhost and IP literals (DNS
    #: rebinding guard, see ``hosts``); ``.example.com`` or ``*.example.com``: subdomains.
    allowed_hosts: tuple[str, ...] = field(default=(), metadata=EVERY_LAYERS)
    #: The file monitor by name (``inotify``, ``watchdog``, ``watchman``, ``polling``) or
    #: dotted path; empty: chosen for this machine (``DEVRELOAD_MONITOR`` overrides both).
    monitor: str = field(default="", metadata=LAST_SET)
    #: Watch globs skip what the project's ``.gitignore`` files exclude.
    gitignore: bool = field(default=True, metadata=UNLESS_ONE_SAYS_NO)
    #: ``auto`` (waitress for WSGI, uvicorn for ASGI), or one of them by name.
    server: str = "auto"
    #: The chosen server's own options (ini strings are converted by the backend).
    server_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.server not in SERVERS:
            raise ValueError(f"server must be one of {', '.join(SERVERS)}, not {self.server!r}")

    def bounds(self, hurried: Callable[[], bool] | None = None) -> Bounds:
        """How long a stopped server drains: under a monitor (``hurried`` tells when
        everything stops) the drain interval, else a bound well inside the shutdown
        interval, as after ``hurried``."""
        short = max(0.1, self.shutdown_interval * 2 / 3)
        if hurried is None:
            return Bounds(short, short)
        return Bounds(self.drain_interval, short, hurried)

    def but(self, **changes: Any) -> ServeOptions:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def merged(self, *layers: ServeOptions) -> ServeOptions:
        """These options with what ``layers`` (later ones weigh more) say of the settings
        several places may set."""
        changes: dict[str, Any] = {}
        for f in fields(self):
            values = [getattr(o, f.name) for o in (self, *layers)]
            rule = f.metadata.get("merge")
            if rule == "every":
                changes[f.name] = tuple(item for value in values for item in value)
            elif rule == "all":
                changes[f.name] = all(values)
            elif rule == "last":
                changes[f.name] = next((v for v in reversed(values) if v != f.default),
                                       f.default)
        return replace(self, **changes)

    def shows_errors(self, listening: Iterable[Address | socket.socket]) -> bool:
        """Tracebacks on the error pages: as set, else only where no other machine can
        reach them (``listening``: the addresses, or the bound sockets)."""
        return not any_public(listening) if self.show_errors is None else self.show_errors

    def reload_settings(self, **more: Any) -> ReloadSettings:
        """What the monitor's loop and file watching take of these options; ``more`` are
        the loop's settings serving decides itself (the worker's entry, its readiness)."""
        return ReloadSettings(
            reload_interval=self.reload_interval,
            shutdown_interval=self.shutdown_interval,
            drain_interval=self.drain_interval,
            poll_interval=self.poll_interval,
            preload=self.preload,
            preload_exclude=self.preload_exclude,
            watch_files=self.watch_files,
            ignore_files=self.ignore_files,
            static_files=self.static_files,
            gitignore=self.gitignore,
            **more,
        )

    @classmethod
    def from_conf(cls, conf: Mapping[str, Any], path: str, section: str) -> ServeOptions:
        """Read ``egg:devreload`` settings (ini strings); a bad value raises ConfigError
        naming the file, the section and the key. Relative paths are taken from the ini."""
        here = os.path.dirname(os.path.abspath(path))
        values: dict[str, Any] = {}
        try:
            if conf.get("listen") is not None:  # empty is an error, not the default
                if conf.get("host") or conf.get("port"):
                    raise ConfigError(path, section, "set either listen or host/port, not both")
                values["addresses"] = tuple(parse_listen(str(conf["listen"])))
            elif conf.get("host") or conf.get("port"):
                values["addresses"] = (make_address(conf.get("host"), conf.get("port")),)
        except AddressError as exc:
            key = "listen" if conf.get("listen") is not None else "port"
            raise ConfigError(path, section, str(exc), key=key) from None
        for key in ("reload", "live_reload", "show_errors", "preload", "gitignore"):
            if conf.get(key) is not None:
                values[key] = conf_bool(conf, key, path, section)
        for key in ("reload_interval", "shutdown_interval", "drain_interval", "poll_interval"):
            seconds = conf_seconds(conf, key, path, section)
            if seconds is not None:
                values[key] = seconds
        for key in ("static_files", "watch_files", "ignore_files"):
            values[key] = tuple(resolve_paths(conf.get(key, ""), here))
        monitor = str(conf.get("monitor", "")).strip()
        problem = monitor_name_problem(monitor) if monitor else None
        if problem is not None:
            raise SettingValueError(path, section, problem, key="monitor")
        values["monitor"] = monitor
        values["preload_exclude"] = tuple(str(conf.get("preload_exclude", "")).split())
        values["allowed_hosts"] = tuple(str(conf.get("allowed_hosts", "")).split())
        server = str(conf.get("server", "auto")).strip() or "auto"
        if server not in SERVERS:
            raise SettingValueError(
                path, section, f"must be one of {', '.join(SERVERS)}", key="server"
            )
        values["server"] = server
        values["server_options"] = {k: v for k, v in conf.items() if k not in OWN_KEYS}
        return cls(**values)

    @classmethod
    def from_waitress_conf(cls, conf: Mapping[str, Any], path: str, section: str) -> ServeOptions:
        """Read a ``use = egg:waitress#main`` section the way waitress reads it: where to
        listen from ``listen``, ``host``/``port`` or ``unix_socket`` (``ipv4``/``ipv6`` narrow
        it), every other key a waitress option, checked by the waitress backend (unknown keys
        fail there, as in waitress). One difference, on purpose: a missing host is 127.0.0.1,
        not waitress's 0.0.0.0; ``host = 0.0.0.0`` or ``listen = *:PORT`` serve other machines.
        """
        given = {key for key in WAITRESS_ADDRESS_KEYS if key in conf}
        if "listen" in given and given & {"host", "port"}:
            raise ConfigError(path, section, "set either listen or host/port, not both")
        if "unix_socket" in given and given & {"listen", "host", "port"}:
            raise ConfigError(path, section, "set either unix_socket or listen/host/port, not both")
        key = next((k for k in ("unix_socket", "listen") if k in given), "port")
        try:
            if "unix_socket" in given:
                addresses = [parse_address(f"unix:{conf['unix_socket']}")]
            elif "listen" in given:
                addresses = parse_listen(str(conf["listen"]))
            else:
                addresses = [make_address(conf.get("host"), conf.get("port"))]
        except AddressError as exc:
            raise ConfigError(path, section, str(exc), key=key) from None
        ipv4 = conf_bool(conf, "ipv4", path, section) is not False
        ipv6 = conf_bool(conf, "ipv6", path, section) is not False
        return cls(
            addresses=tuple(_of_family(a, ipv4, ipv6, path, section) for a in addresses),
            server="waitress",
            server_options={k: v for k, v in conf.items() if k not in WAITRESS_ADDRESS_KEYS},
        )


def _of_family(address: Address, ipv4: bool, ipv6: bool, path: str, section: str) -> Address:
    """waitress's ``ipv4 = false`` or ``ipv6 = false`` applied to one address: the wildcard
    moves to the other family, an address of the switched-off family is an error."""
    if address.unix_path is not None or ipv4 == ipv6:  # both off means both, as in waitress
        return address
    try:
        version = ipaddress.ip_address(address.host).version
    except ValueError:
        return address  # a host name: the family is the resolver's choice
    if version == 4 and not ipv4:
        if address.host == "0.0.0.0":
            return replace(address, host="::")
        raise ConfigError(path, section, f"false, but {address} is an IPv4 address", key="ipv4")
    if version == 6 and not ipv6:
        raise ConfigError(path, section, f"false, but {address} is an IPv6 address", key="ipv6")
    return address


def resolve_paths(value: str | Iterable[str], here: str) -> list[str]:
    """Paths or globs (whitespace or newline separated) made absolute relative to ``here``."""
    items = value.split() if isinstance(value, str) else list(value)
    return [os.path.normpath(os.path.join(here, os.path.expanduser(item))) for item in items]
