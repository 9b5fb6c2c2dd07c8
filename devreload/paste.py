"""PasteDeploy glue: the ``egg:devreload`` server and the ini handling ``devreload serve`` needs.

``name=value`` variables from the command line win over ``[DEFAULT]`` everywhere: in
interpolation (``port = %(http_port)s``), in the ``global_conf`` the app gets, in files
pulled in with ``use = config:...``, and in the ``[devreload]`` section.
"""

from __future__ import annotations

import configparser
import contextlib
import importlib.metadata
import logging
import logging.config
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from paste.deploy import loadwsgi

from . import servers
from . import sockets as socks
from .errors import (
    AddressError,
    AppFactoryError,
    ConfigError,
    DevreloadError,
    ServerOptionError,
)
from .middleware import LiveReload
from .worker import exit_quickly, is_active, where_raised

logger = logging.getLogger("devreload")

#: The ``egg:devreload`` keys devreload reads itself; every other key goes to the server.
OWN_KEYS = frozenset(
    {
        "listen",
        "host",
        "port",
        "reload",
        "reload_interval",
        "shutdown_interval",
        "show_errors",
        "live_reload",
        "static_files",
        "watch_files",
        "ignore_files",
        "server",
    }
)
DEVRELOAD_SECTION = "devreload"
DEFAULT_LOG_FORMAT = "%(asctime)s %(levelname)-5.5s [%(name)s] %(message)s"


@dataclass
class ServerSettings:
    """What ``[server:NAME] use = egg:devreload`` asks for."""

    addresses: list[socks.Address] = field(
        default_factory=lambda: [socks.make_address(socks.DEFAULT_HOST, socks.DEFAULT_PORT)]
    )
    reload: bool = False
    reload_interval: float = 0.05
    shutdown_interval: float = 1.5
    watch_files: list[str] = field(default_factory=list)
    ignore_files: list[str] = field(default_factory=list)
    server: str = "auto"
    show_errors: bool | None = None
    live_reload: bool = True
    static_files: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


def parse_server_settings(
    conf: Mapping[str, Any], path: str, section: str = "server"
) -> ServerSettings:
    """Read the ``egg:devreload`` options; a bad value raises ConfigError naming the key."""
    here = os.path.dirname(os.path.abspath(path))
    settings = ServerSettings()
    try:
        if conf.get("listen"):
            if conf.get("host") or conf.get("port"):
                raise ConfigError(path, section, "set either listen or host/port, not both")
            settings.addresses = socks.parse_listen(str(conf["listen"]))
        elif conf.get("host") or conf.get("port"):
            settings.addresses = [socks.make_address(conf.get("host"), conf.get("port"))]
    except AddressError as exc:
        key = "listen" if conf.get("listen") else "port"
        raise ConfigError(path, section, str(exc), key=key) from None
    settings.reload = _bool(conf, "reload", False, path, section)
    settings.reload_interval = _seconds(conf, "reload_interval", 0.05, path, section)
    settings.shutdown_interval = _seconds(conf, "shutdown_interval", 1.5, path, section)
    if conf.get("show_errors") is not None:
        settings.show_errors = _bool(conf, "show_errors", False, path, section)
    settings.live_reload = _bool(conf, "live_reload", True, path, section)
    settings.static_files = resolve_paths(conf.get("static_files", ""), here)
    settings.watch_files = resolve_paths(conf.get("watch_files", ""), here)
    settings.ignore_files = resolve_paths(conf.get("ignore_files", ""), here)
    settings.server = str(conf.get("server", "auto")).strip() or "auto"
    if settings.server not in servers.SERVERS:
        raise ConfigError(
            path, section, f"must be one of {', '.join(servers.SERVERS)}", key="server"
        )
    settings.options = {k: v for k, v in conf.items() if k not in OWN_KEYS}
    return settings


def _bool(conf: Mapping[str, Any], key: str, default: bool, path: str, section: str) -> bool:
    value = conf.get(key)
    if value is None or isinstance(value, bool):
        return default if value is None else value
    try:
        return servers.asbool(str(value))
    except ValueError:
        raise ConfigError(path, section, f"{value!r} is not true or false", key=key) from None


def _seconds(conf: Mapping[str, Any], key: str, default: float, path: str, section: str) -> float:
    value = conf.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(path, section, f"{value!r} is not a number of seconds", key=key) from None
    if seconds < 0:
        raise ConfigError(path, section, f"{value!r} must not be negative", key=key)
    return seconds


def resolve_paths(value: str | Iterable[str], here: str) -> list[str]:
    """Paths or globs (whitespace or newline separated) made absolute relative to ``here``."""
    items = value.split() if isinstance(value, str) else list(value)
    return [os.path.normpath(os.path.join(here, os.path.expanduser(item))) for item in items]


# --------------------------------------------------------------------------- egg:devreload


def server_runner(wsgi_app: Any, global_conf: Mapping[str, Any], **kw: Any) -> None:
    """``[server:main] use = egg:devreload``: serve the app, reloading when ``reload = true``.

    Under a devreload monitor it serves on the sockets the monitor handed over.
    """
    path = str(global_conf.get("__file__", "<ini>"))
    run_devreload_server(wsgi_app, parse_server_settings(kw, path), path, "server")


def run_devreload_server(
    app: Any, settings: ServerSettings, path: str, section: str, browser: bool = False
) -> None:
    """Serve ``app`` as ``settings`` say; server option errors name the ini and section."""
    try:
        if settings.server != "auto" or not isinstance(app, str):
            servers.choose_and_check(app, settings.server, settings.options)
        servers.serve(
            app,
            reload=settings.reload,
            listen=[str(address) for address in settings.addresses],
            server=settings.server,
            reload_interval=settings.reload_interval,
            shutdown_interval=settings.shutdown_interval,
            watch_files=settings.watch_files,
            ignore_files=settings.ignore_files,
            browser=browser,
            show_errors=settings.show_errors,
            live_reload=settings.live_reload,
            static_files=settings.static_files,
            **settings.options,
        )
    except ServerOptionError as exc:
        raise ConfigError(path, section, f"{exc.message} (server: {exc.server})", exc.key) from None


# --------------------------------------------------------------------------- ini loading


class _Loader(loadwsgi.ConfigLoader):  # type: ignore[misc]
    """A PasteDeploy config loader whose overrides win over every file's ``[DEFAULT]``,
    included files too."""

    def __init__(self, filename: str, overrides: Mapping[str, str]) -> None:
        super().__init__(filename)
        self.overrides = dict(overrides)
        self.update_defaults(self.overrides, overwrite=True)

    def get_context(
        self, object_type: Any, name: str | None = None, global_conf: Any = None
    ) -> Any:
        if name is not None and name.strip().lower().startswith("config:"):
            target, _, section = name.strip()[len("config:") :].partition("#")
            included = _Loader(_included_path(target, self.filename), self.overrides)
            if global_conf:
                included.update_defaults(global_conf, overwrite=False)
            return included.get_context(object_type, section or "main", global_conf)
        return super().get_context(object_type, name, global_conf)


def _included_path(target: str, including: str) -> str:
    target = target.replace("\\", "/")
    if target.startswith("///"):
        target = target[2:]
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(including)), target))


@dataclass
class IniConfig:
    """One ini file, the sections to use, and the ``name=value`` overrides."""

    path: str
    app_name: str = "main"
    server_name: str = "main"
    overrides: dict[str, str] = field(default_factory=dict)
    #: False when the command line said ``--no-live-reload``.
    live_reload: bool = True

    def __post_init__(self) -> None:
        self.path = os.path.abspath(self.path)

    @property
    def here(self) -> str:
        return os.path.dirname(self.path)

    def defaults(self) -> dict[str, str]:
        """The interpolation defaults every section sees: here, __file__, then overrides."""
        return {"here": self.here, "__file__": self.path, **self.overrides}

    def _loader(self) -> _Loader:
        if self.here not in sys.path:
            # ``use = call:app:make_app`` finds a module next to the ini, as users expect.
            sys.path.insert(0, self.here)
        with _reading(self.path):
            return _Loader(self.path, self.overrides)

    def _context(self, kind: Any, section: str) -> Any:
        loader = self._loader()
        try:
            return loader.get_context(
                kind, self.app_name if kind is loadwsgi.APP else self.server_name, self.overrides
            )
        except importlib.metadata.PackageNotFoundError as exc:
            raise ConfigError(self.path, section, f"unknown egg {exc.name!r}", key="use") from None
        except (LookupError, configparser.Error, FileNotFoundError) as exc:
            raise ConfigError(self.path, section, _one_line(exc)) from None

    def server_context(self) -> Any:
        """The server section resolved (imports only the server's package, never the app)."""
        return self._context(loadwsgi.SERVER, f"server:{self.server_name}")

    def load_app(self) -> Any:
        """Build the app (``[app:NAME]``, a pipeline or a composite) with the overrides."""
        section = f"app:{self.app_name}"
        context = self._context(loadwsgi.APP, section)
        try:
            return context.create()
        except DevreloadError:
            raise
        except Exception as exc:
            raise AppFactoryError(self.path, section, where_raised(exc), exc) from exc

    def is_devreload_server(self, context: Any) -> bool:
        return context.object is server_runner

    def server_settings(self, context: Any) -> ServerSettings:
        """The server section's settings, with the ``[devreload]`` section's static files
        and live-reload switch, and the command line's, merged in."""
        settings = parse_server_settings(
            context.local_conf, self.path, f"server:{self.server_name}"
        )
        live_reload, static_files = self.live_reload_settings()
        settings.live_reload = settings.live_reload and live_reload
        settings.static_files += static_files
        return settings

    def live_reload_settings(self) -> tuple[bool, list[str]]:
        """Whether pages follow reloads, and the static files pushed to them."""
        parser = self._parser()
        if not parser.has_section(DEVRELOAD_SECTION):
            return self.live_reload, []
        try:
            conf = dict(parser.items(DEVRELOAD_SECTION))
        except configparser.Error as exc:
            raise ConfigError(self.path, DEVRELOAD_SECTION, _one_line(exc)) from None
        enabled = _bool(conf, "live_reload", True, self.path, DEVRELOAD_SECTION)
        static = resolve_paths(conf.get("static_files", ""), self.here)
        return enabled and self.live_reload, static

    def config_files(self) -> list[str]:
        """This ini and every file it pulls in with ``config:``, recursively."""
        found: list[str] = []
        todo = [self.path]
        while todo:
            path = todo.pop(0)
            if path in found:
                continue
            found.append(path)
            todo.extend(_config_references(path, self.overrides))
        return found

    def devreload_section(self) -> tuple[list[str], list[str]]:
        """``watch_files`` and ``ignore_files`` of the optional ``[devreload]`` section."""
        parser = self._parser()
        if not parser.has_section(DEVRELOAD_SECTION):
            return [], []
        own = {k for k in parser.options(DEVRELOAD_SECTION) if k not in parser.defaults()}
        unknown = sorted(own - {"watch_files", "ignore_files", "static_files", "live_reload"})
        if unknown:
            raise ConfigError(self.path, DEVRELOAD_SECTION, "unknown setting", key=unknown[0])
        values = {}
        for key in ("watch_files", "ignore_files"):
            try:
                values[key] = parser.get(DEVRELOAD_SECTION, key, fallback="")
            except configparser.Error as exc:
                raise ConfigError(self.path, DEVRELOAD_SECTION, _one_line(exc), key=key) from None
        return (
            resolve_paths(values["watch_files"], self.here),
            resolve_paths(values["ignore_files"], self.here),
        )

    def _parser(self) -> configparser.ConfigParser:
        parser = loadwsgi.NicerConfigParser(self.path, defaults=self.defaults())
        parser.optionxform = str
        with _reading(self.path), open(self.path) as f:
            parser.read_file(f)
        parser._defaults.update(self.overrides)  # after reading: they win over [DEFAULT]
        return parser  # type: ignore[no-any-return]

    def setup_logging(self) -> None:
        """Logging from the ini's ``[loggers]``/``[handlers]``/``[formatters]``, or a plain
        default; devreload's own logger stays enabled either way."""
        if self._parser().has_section("loggers"):
            try:
                logging.config.fileConfig(self._parser(), disable_existing_loggers=False)
            except (
                KeyError,
                ValueError,
                ImportError,
                AttributeError,
                TypeError,
                configparser.Error,
            ) as exc:
                raise ConfigError(
                    self.path, "loggers", f"bad logging setup: {_one_line(exc)}"
                ) from None
        else:
            default_logging()


def default_logging() -> None:
    """INFO to stderr with time, level and logger, unless logging is configured already."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format=DEFAULT_LOG_FORMAT, datefmt="%H:%M:%S")


def _config_references(path: str, overrides: Mapping[str, str]) -> list[str]:
    """Files one ini names with ``config:`` in any setting (``use``, ``next``, ...)."""
    parser = configparser.ConfigParser(
        defaults={"here": os.path.dirname(path), "__file__": path}, strict=False
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        with open(path) as f:
            parser.read_file(f)
    except (OSError, UnicodeDecodeError, configparser.Error):
        return []
    parser.read_dict({"DEFAULT": {k: v.replace("%", "%%") for k, v in overrides.items()}})
    found = []
    for section in parser.sections():
        for option in parser.options(section):
            try:
                value = parser.get(section, option)
            except configparser.Error:
                value = parser.get(section, option, raw=True)
            for word in value.split():
                if word.lower().startswith("config:"):
                    target = word[len("config:") :].partition("#")[0]
                    found.append(_included_path(target, path))
    return found


@contextlib.contextmanager
def _reading(path: str) -> Iterator[None]:
    """An ini that is missing, unreadable or malformed, as one line naming it."""
    try:
        yield
    except FileNotFoundError:
        raise ConfigError(path, None, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, f"cannot read the file ({exc})") from None
    except configparser.Error as exc:
        raise ConfigError(path, None, _one_line(exc)) from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


# --------------------------------------------------------------------------- running an ini


def run_ini(config: IniConfig, browser: bool = False) -> None:
    """Load the app and the server from the ini and serve: in this process, or (under a
    monitor) on the sockets the monitor bound. The entry point of ``serve --reload`` workers."""
    config.setup_logging()
    context = config.server_context()
    if config.is_devreload_server(context):
        settings = config.server_settings(context)
        run_devreload_server(
            config.load_app(), settings, config.path, f"server:{config.server_name}", browser
        )
    else:
        if browser:
            servers.open_browser_when_ready(_foreign_url(context))
        app = config.load_app()
        if is_active() and config.live_reload_settings()[0]:
            app = LiveReload(app)
        context.create()(app)


def _foreign_url(context: Any) -> str:
    """Where another paste server will most likely answer, from its host/port/listen."""
    conf = context.local_conf
    try:
        if conf.get("listen"):
            return socks.parse_listen(str(conf["listen"]))[0].url
        return socks.make_address(conf.get("host"), conf.get("port")).url
    except AddressError:
        return socks.Address().url


def serve_ini_worker(
    path: str,
    app_name: str,
    server_name: str,
    overrides: dict[str, str],
    live_reload: bool = True,
) -> NoReturn:
    """Worker entry for ``devreload serve --reload``. A bad ini raises a DevreloadError:
    the worker prints it as one line, the monitor shows it and waits for a fix."""
    run_ini(IniConfig(path, app_name, server_name, overrides, live_reload))
    exit_quickly()


def monitor_ini(config: IniConfig, watch_files: Iterable[str] = (), browser: bool = False) -> None:
    """Become the monitor for an ini: bind ``egg:devreload``'s sockets here, once, and
    restart a worker running :func:`serve_ini_worker` on every change of the code, the ini,
    the files it includes, or the watched files."""
    context = config.server_context()
    extra_watch, ignore = config.devreload_section()
    watch = [*config.config_files(), *extra_watch, *watch_files]
    if config.is_devreload_server(context):
        settings = config.server_settings(context)
        if settings.server != "auto":
            try:
                servers.server_options(settings.server, settings.options)
            except ServerOptionError as exc:
                raise ConfigError(
                    config.path, f"server:{config.server_name}", exc.message, exc.key
                ) from None
        bound = socks.bind_all(settings.addresses)
        servers.log_serving(bound, browser)
        watch += settings.watch_files
        ignore += settings.ignore_files
        interval, shutdown = settings.reload_interval, settings.shutdown_interval
        show_errors = settings.show_errors
        static = settings.static_files
    else:
        bound = []
        interval, shutdown = 0.05, 1.5
        show_errors = None
        static = config.live_reload_settings()[1]
        if browser:
            servers.open_browser_when_ready(_foreign_url(context))
    try:
        servers.start_monitor(
            "devreload.paste.serve_ini_worker",
            bound,
            worker_args=(
                config.path,
                config.app_name,
                config.server_name,
                config.overrides,
                config.live_reload,
            ),
            reload_interval=interval,
            shutdown_interval=shutdown,
            watch_files=watch,
            ignore_files=ignore,
            show_errors=show_errors,
            static_files=static,
        )
    finally:
        socks.close_all(bound)
