"""Reading a pserve-style ini: PasteDeploy sections, ``config:`` includes, logging, the
``[devreload]`` section, and the one place the ini becomes
:class:`~devreload.options.ServeOptions` (``IniConfig.serve_options``).

``name=value`` variables from the command line win over ``[DEFAULT]`` everywhere: in
interpolation (``port = %(http_port)s``), in the ``global_conf`` the app gets, in files
pulled in with ``use = config:...``, and in the ``[devreload]`` section.
"""

from __future__ import annotations

import configparser
import contextlib
import importlib.metadata
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from paste.deploy import loadwsgi

from devreload.errors import (
    AppFactoryError,
    AppModuleError,
    ConfigError,
    DevreloadError,
    ServerOptionError,
)
from devreload.servers.choice import check
from devreload.serving.apps import where_failed
from devreload.serving.options import ServeOptions
from devreload.web.kinds import NOT_AN_APP, is_app
from devreload.worker.preload import end_prefix
from devreload.worker.proxy import is_active

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
        "monitor",
        "gitignore",
    }
)
DEFAULT_LOG_FORMAT = "%(asctime)s %(levelname)-5.5s [%(name)s] %(message)s"


# --------------------------------------------------------------------------- ini loading


def checked(app: Any, options: ServeOptions, path: str, section: str) -> None:
    """Check the server's options against ``app``; errors name the ini and the section."""
    try:
        check(app, options.server, options.server_options, options.addresses)
    except ServerOptionError as exc:
        raise ConfigError(path, section, f"{exc.message} (server: {exc.server})", exc.key) from None


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
    #: What the command line said (``--no-live-reload``, ``--monitor``...): weighs most.
    command_line: ServeOptions = field(default_factory=ServeOptions)

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
        """``use = egg:devreload`` (``devreload.paste.server_runner``)."""
        runner = context.object
        return (getattr(runner, "__module__", None), getattr(runner, "__name__", None)) == (
            "devreload.serving.paste", "server_runner"
        )

    def is_waitress_server(self, context: Any) -> bool:
        """``use = egg:waitress#main`` (waitress's ``paste.server_runner``), known by its
        name: importing waitress to compare would delay every monitor's start."""
        runner = context.object
        return (getattr(runner, "__module__", None), getattr(runner, "__name__", None)) == (
            "waitress", "serve_paste"
        )

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
        """``server`` with the ``[devreload]`` section and the command line over it (see
        :meth:`ServeOptions.merged`), and the ini's own files watched."""
        options = server.merged(self.devreload_section(), self.command_line)
        return options.but(watch_files=(*self.config_files(), *options.watch_files))

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
            import logging.config  # only for an ini that configures logging

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
