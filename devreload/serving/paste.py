"""PasteDeploy glue: the ``egg:devreload`` server, and serving an ini (``devreload serve``):
the monitor side, the worker entry, and other servers' runners. Reading the ini is
:mod:`~devreload.serving.ini`'s job; serving is :mod:`~devreload.serving.serve`'s.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from devreload.errors import (
    AddressError,
    ConfigError,
    ServerOptionError,
)
from devreload.log import default_logger, display_path
from devreload.servers.choice import check_any
from devreload.serving.ini import DEVRELOAD_SECTION, IniConfig, checked
from devreload.serving.options import ServeOptions
from devreload.serving.serve import InStack, open_browser_when_ready, run_monitor, serve_app
from devreload.sockets import (
    UNIX,
    Address,
    make_address,
    mixes_unix_and_ip,
    parse_listen,
    reachable_host,
)
from devreload.web.wsgi import LiveReload
from devreload.worker.proxy import get_reloader, is_active

#: What every worker of an ini runs.
WORKER_ENTRY = "devreload.serving.paste:serve_ini_worker"
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
    serve_app(wsgi_app, options, show_errors_hint=hint)


# --------------------------------------------------------------------------- serving an ini


def serve_ini(config: IniConfig, reload: bool = False, browser: bool = False,
              in_stack: InStack | None = None) -> int:
    """``devreload serve``: serve the ini here, or with ``reload`` (or the server section's
    ``reload = true``) become the monitor of workers that serve it; the exit code. In a
    stack it is always reloaded."""
    config.setup_logging()
    context = config.server_context()
    options = config.serve_options(context).but(browser=browser)
    if not (reload or options.reload or in_stack):
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
            open_browser_when_ready(_foreign_url(context))
    # Another runner's worker says Ready too, once its server accepts (_serve).
    return run_monitor(
        options.but(browser=browser and ours),
        WORKER_ENTRY,
        (config,),
        hold_sockets=ours,
        worker_announces_ready=True,
        before_reload=_address_edits(config, options.addresses) if ours else None,
        show_errors_hint=_show_errors_hint(config, context),
        in_stack=in_stack,
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
        serve_app(app, options)
        return
    if options.browser:
        open_browser_when_ready(_foreign_url(context))
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
            if UNIX is None:
                return False
            with socket.socket(UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(1.0)
                probe.connect(address.unix_path)
            return True
        with socket.create_connection((reachable_host(address.host), address.port),
                                      timeout=1.0):
            return True
    except OSError:
        return False
