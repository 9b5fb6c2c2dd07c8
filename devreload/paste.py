"""PasteDeploy glue: reading a pserve-style ini, and the ``egg:devreload`` server.

``name=value`` variables from the command line win over ``[DEFAULT]`` everywhere: in
interpolation (``port = %(http_port)s``), in the ``global_conf`` the app gets, in files
pulled in with ``use = config:...``, and in the ``[devreload]`` section.
The ini becomes :class:`~devreload.options.ServeOptions` in one place,
``IniConfig.serve_options``; serving it is ``serving``'s job.
"""

from __future__ import annotations

import configparser
import contextlib
import importlib.metadata
import logging
import logging.config
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from paste.deploy import loadwsgi

from devreload import serving
from devreload.errors import (
    AddressError,
    AppFactoryError,
    AppModuleError,
    ConfigError,
    DevreloadError,
    ServerOptionError,
)
from devreload.importapp import where_failed
from devreload.log import default_logger, display_path
from devreload.middleware import LiveReload
from devreload.options import ServeOptions
from devreload.preload import end_prefix
from devreload.servers import NOT_AN_APP, check, check_any, is_app
from devreload.sockets import Address, make_address, mixes_unix_and_ip, parse_listen
from devreload.worker import get_reloader, is_active

DEVRELOAD_SECTION = "devreload"
#: The keys the ``[devreload]`` section may hold.
DEVRELOAD_KEYS = frozenset(
    {
        "watch_files",
        "ignore_files",
        "static_files",
        "live_reload",
        "show_errors",
        "preload",
        "preload_exclude",
        "allowed_hosts",
    }
)
DEFAULT_LOG_FORMAT = "%(asctime)s %(levelname)-5.5s [%(name)s] %(message)s"
#: How long a worker waits for another server runner to accept before it says Ready anyway.
FOREIGN_READY_DEADLINE = 30.0
FOREIGN_PROBE_INTERVAL = 0.02


# --------------------------------------------------------------------------- egg:devreload


def server_runner(wsgi_app: Any, global_conf: Mapping[str, Any], **kw: Any) -> None:
    """``[server:main] use = egg:devreload``: serve the app, reloading when ``reload = true``.

    Under a devreload monitor it serves on the sockets the monitor handed over. Loaded
    from an ini (pserve), the ini, the files it pulls in with ``config:`` and its
    ``[devreload]`` section count too, as under ``devreload serve``.
    """
    path = str(global_conf.get("__file__", "<ini>"))
    options = ServeOptions.from_conf(kw, path, "server")
    checked(wsgi_app, options, path, "server")
    if global_conf.get("__file__"):
        variables = {
            k: v
            for k, v in global_conf.items()
            if isinstance(v, str) and k not in ("here", "__file__")
        }
        options = IniConfig(path, overrides=variables).with_ini(options)
    hint = f"set show_errors = true in the egg:devreload section or [devreload] of {path}"
    serving.serve_app(wsgi_app, options, show_errors_hint=hint)


def checked(app: Any, options: ServeOptions, path: str, section: str) -> None:
    """Check the server's options against ``app``; errors name the ini and the section."""
    try:
        check(app, options.server, options.server_options, options.addresses)
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
    #: False when the command line said ``--no-preload``.
    preload: bool = True
    #: Modules the command line said ``--preload-exclude`` for.
    preload_exclude: tuple[str, ...] = ()
    #: Names the command line said ``--allowed-host`` for.
    allowed_hosts: tuple[str, ...] = ()

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
        except DevreloadError:
            raise
        except Exception as exc:
            # The module ``use`` names does not import. In a worker the exception stays as
            # it is: its traceback is the error page, its files are watched for the fix.
            # Without a monitor it is one line.
            if is_active():
                raise
            what = "the app" if kind is loadwsgi.APP else "the server"
            if isinstance(exc, (ImportError, AttributeError)) and _raised_by_the_loader(exc):
                message = f"cannot import {what}: {_one_line(exc)}"
            else:
                message = f"importing {what} failed at {where_failed(exc)}: " + _one_line(
                    f"{type(exc).__name__}: {exc}"
                )
            raise AppModuleError(self.path, section, message) from exc

    @property
    def server_section(self) -> str:
        return f"server:{self.server_name}"

    def server_context(self) -> Any:
        """The server section resolved (imports only the server's package, never the app)."""
        return self._context(loadwsgi.SERVER, self.server_section)

    def load_app(self) -> Any:
        """Build the app (``[app:NAME]``, a pipeline or a composite) with the overrides."""
        section = f"app:{self.app_name}"
        context = self._context(loadwsgi.APP, section)
        end_prefix(f"imported after the app factory of [{section}] ran")
        try:
            app = context.create()
        except DevreloadError:
            raise
        except Exception as exc:
            raise AppFactoryError(self.path, section, where_failed(exc), exc) from exc
        if not is_app(app):
            shown = "None" if app is None else f"{_short_repr(app)} (of type {type(app).__name__})"
            raise ConfigError(
                self.path, section, f"{_factory_name(context)} returned {shown}, {NOT_AN_APP}"
            )
        return app

    def is_devreload_server(self, context: Any) -> bool:
        return context.object is server_runner

    def is_waitress_server(self, context: Any) -> bool:
        """``use = egg:waitress#main`` (waitress's ``paste.server_runner``)."""
        import waitress

        return context.object is waitress.serve_paste

    def holds_sockets(self, context: Any) -> bool:
        """Whether devreload serves this server section itself, on sockets the monitor
        holds (with the error page): ``egg:devreload`` and ``egg:waitress#main``. Any other
        runner binds a socket of its own in each worker."""
        return self.is_devreload_server(context) or self.is_waitress_server(context)

    def serve_options(self, context: Any) -> ServeOptions:
        """The ini's serving options: the server section read as ``egg:devreload``'s or
        as waitress's own (defaults for another server), then :meth:`with_ini`."""
        section = self.server_section
        if self.is_devreload_server(context):
            server = ServeOptions.from_conf(context.local_conf, self.path, section)
        elif self.is_waitress_server(context):
            server = ServeOptions.from_waitress_conf(context.local_conf, self.path, section)
            checked(None, server, self.path, section)
        else:
            server = ServeOptions()
        return self.with_ini(server)

    def with_ini(self, server: ServeOptions) -> ServeOptions:
        """``server`` plus the ``[devreload]`` section and the ini's own files to watch;
        ``--no-live-reload`` and ``--no-preload`` win."""
        section = self.devreload_section()
        return server.but(
            watch_files=(*self.config_files(), *section.watch_files, *server.watch_files),
            ignore_files=(*section.ignore_files, *server.ignore_files),
            static_files=(*server.static_files, *section.static_files),
            live_reload=server.live_reload and section.live_reload and self.live_reload,
            show_errors=server.show_errors if section.show_errors is None else section.show_errors,
            preload=server.preload and section.preload and self.preload,
            preload_exclude=(
                *server.preload_exclude, *section.preload_exclude, *self.preload_exclude
            ),
            allowed_hosts=(*server.allowed_hosts, *section.allowed_hosts, *self.allowed_hosts),
        )

    def devreload_section(self) -> ServeOptions:
        """The optional ``[devreload]`` section: ``watch_files``, ``ignore_files``,
        ``static_files``, ``live_reload`` and ``show_errors``."""
        parser = self._parser()
        if not parser.has_section(DEVRELOAD_SECTION):
            return ServeOptions()
        own = {k for k in parser.options(DEVRELOAD_SECTION) if k not in parser.defaults()}
        unknown = sorted(own - DEVRELOAD_KEYS)
        if unknown:
            raise ConfigError(self.path, DEVRELOAD_SECTION, "unknown setting", key=unknown[0])
        values = {}
        for key in sorted(own):
            try:
                values[key] = parser.get(DEVRELOAD_SECTION, key)
            except configparser.Error as exc:
                raise ConfigError(self.path, DEVRELOAD_SECTION, _one_line(exc), key=key) from None
        return ServeOptions.from_conf(values, self.path, DEVRELOAD_SECTION)

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


def _one_line(exc: BaseException | str) -> str:
    return " ".join(str(exc).split())


def _raised_by_the_loader(exc: BaseException) -> bool:
    """Whether what ``use`` names is itself missing (PasteDeploy or importlib raised: no
    such module, no such name in it), rather than something the module imports."""
    frames = traceback.extract_tb(exc.__traceback__)
    innermost = os.path.realpath(frames[-1].filename) if frames else ""
    return innermost.startswith(_LOADER_DIRS)


_LOADER_DIRS = tuple(
    os.path.dirname(os.path.realpath(module.__file__ or "")) + os.sep
    for module in (loadwsgi, importlib)
)


def _factory_name(context: Any) -> str:
    """An app factory as a line can name it: ``the app factory module:name``."""
    factory = context.object
    name = getattr(factory, "__qualname__", None)
    if name is None:
        return "the app factory"
    return f"the app factory {getattr(factory, '__module__', '?')}:{name}"


def _short_repr(value: object, limit: int = 60) -> str:
    text = _one_line(repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- serving an ini


def serve_ini(config: IniConfig, reload: bool = False, browser: bool = False) -> int:
    """``devreload serve``: serve the ini here, or with ``reload`` (or the server section's
    ``reload = true``) become the monitor of workers that serve it; the exit code."""
    config.setup_logging()
    context = config.server_context()
    options = config.serve_options(context).but(browser=browser)
    if not (reload or options.reload):
        _serve(config, context, options)
        return 0
    ours = config.holds_sockets(context)
    if ours:
        _check_before_binding(config, options)
    if not ours:
        default_logger().warning(
            "%s: [%s] runs %s, which binds its own socket: devreload does not hold it, so "
            "requests are refused while the app restarts and no error page is shown "
            "(use = egg:devreload for both)",
            display_path(config.path),
            config.server_section,
            _runner_name(context),
        )
        if browser:
            serving.open_browser_when_ready(_foreign_url(context))
    # Another runner's worker says Ready too, once its server accepts (_serve).
    return serving.run_monitor(
        options.but(browser=browser and ours),
        "devreload.paste:serve_ini_worker",
        (config,),
        hold_sockets=ours,
        worker_announces_ready=True,
        before_reload=_address_edits(config, options.addresses) if ours else None,
        show_errors_hint=_show_errors_hint(config, context),
    )


def _check_before_binding(config: IniConfig, options: ServeOptions) -> None:
    """The monitor binds once, before any worker imports the app: a server section that
    cannot work fails here, at once, instead of in every worker (where fixing the address
    would need a restart anyway). With ``server = auto`` the app decides between waitress
    and uvicorn, so only what neither takes is refused."""
    if options.server != "auto":
        checked(None, options, config.path, config.server_section)
        return
    try:
        check_any(options.server_options)
    except ServerOptionError as exc:
        message = f"{exc.message} (server: {exc.server})"
        raise ConfigError(config.path, config.server_section, message, exc.key) from None
    if mixes_unix_and_ip(options.addresses):
        raise ConfigError(
            config.path,
            config.server_section,
            "a unix socket and IP addresses at once need server = uvicorn (an ASGI app); "
            "waitress cannot serve both",
            key="listen",
        )


def _address_edits(config: IniConfig, addresses: tuple[Address, ...]) -> Callable[[], None]:
    """Before each restart the monitor reads the server section again (the workers read
    it anyway): an edited ``listen``, ``host`` or ``port`` cannot apply, since the monitor
    bound its sockets once. Say so in one line, once per edit."""
    seen = [addresses]

    def before_reload() -> None:
        try:
            now = config.serve_options(config.server_context()).addresses
        except Exception:  # a half-saved ini: the worker will say what is wrong
            return
        if now == seen[0]:
            return
        seen[0] = now
        if now != addresses:
            default_logger().warning(
                "%s: [%s] now listens on %s, but devreload still serves on %s: the monitor "
                "binds once, so an address change needs a restart of devreload",
                display_path(config.path),
                config.server_section,
                " ".join(map(str, now)),
                " ".join(map(str, addresses)),
            )

    return before_reload


def _show_errors_hint(config: IniConfig, context: Any) -> str:
    """Where this ini shows tracebacks on a public address."""
    where = f"[{config.server_section}] or " if config.is_devreload_server(context) else ""
    return f"set show_errors = true in {where}[{DEVRELOAD_SECTION}] of {display_path(config.path)}"


def serve_ini_worker(config: IniConfig) -> None:
    """Worker entry for ``devreload serve --reload``. A bad ini raises a DevreloadError:
    the worker prints it as one line, the monitor shows it and waits for a fix."""
    config.setup_logging()
    context = config.server_context()
    _serve(config, context, config.serve_options(context))


def _serve(config: IniConfig, context: Any, options: ServeOptions) -> None:
    """Build the app and serve it: on the monitor's sockets in a worker, else here."""
    if config.holds_sockets(context):
        app = config.load_app()
        checked(app, options, config.path, config.server_section)
        serving.serve_app(app, options)
        return
    if options.browser:
        serving.open_browser_when_ready(_foreign_url(context))
    app = config.load_app()
    if is_active():
        if options.live_reload:
            app = LiveReload(app, allowed_hosts=options.allowed_hosts)
        _notify_ready_when_accepting(_foreign_address(context))
    context.create()(app)


def _runner_name(context: Any) -> str:
    """Another server runner as the ini names it: ``egg:dist#entry``, else ``call:mod:name``."""
    if context.distribution is not None:
        return f"egg:{context.distribution.metadata['Name']}#{context.entry_point_name}"
    runner = context.object
    return f"call:{getattr(runner, '__module__', '?')}:{getattr(runner, '__qualname__', runner)}"


def _foreign_address(context: Any) -> Address:
    """Where another paste server will most likely answer, from its host/port, listen or
    (gunicorn's) bind."""
    conf = context.local_conf
    try:
        for key in ("listen", "bind"):
            if conf.get(key):
                return parse_listen(str(conf[key]))[0]
        return make_address(conf.get("host"), conf.get("port"))
    except AddressError:
        return Address()


def _foreign_url(context: Any) -> str:
    return _foreign_address(context).url


def _notify_ready_when_accepting(
    address: Address, deadline: float = FOREIGN_READY_DEADLINE
) -> None:
    """Another runner binds by itself: tell the monitor this worker is ready (which times
    the restart) once ``address`` accepts a connection, or after ``deadline`` seconds anyway."""

    def probe() -> None:
        give_up = time.monotonic() + deadline
        while not _accepts(address):
            if time.monotonic() >= give_up:
                default_logger().debug(
                    "nothing accepted on %s within %.0f s; the worker counts as ready",
                    address,
                    deadline,
                )
                break
            time.sleep(FOREIGN_PROBE_INTERVAL)
        get_reloader().notify_ready()

    threading.Thread(target=probe, name="devreload-ready-probe", daemon=True).start()


def _accepts(address: Address) -> bool:
    """Whether a connection to ``address`` (a wildcard host: this machine) succeeds."""
    try:
        if address.unix_path is not None:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(1.0)
                probe.connect(address.unix_path)
            return True
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(address.host, address.host)
        with socket.create_connection((host, address.port), timeout=1.0):
            return True
    except OSError:
        return False
