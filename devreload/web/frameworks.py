"""What a framework's own development server does that a user would miss under devreload.

Applied in the worker to the loaded app, before it is served (``prepare``). Frameworks are
recognised by the class of the app, looked up in ``sys.modules``: nothing is imported for
an app that does not use the framework.

- Django (``get_wsgi_application()`` or ``get_asgi_application()``): like ``runserver``,
  the URLconf is imported and the system checks run at start, so a broken view fails the
  start (and shows the error page at once) instead of every request; with ``DEBUG`` and
  ``django.contrib.staticfiles`` installed, static files are served (the admin is styled).
  The ASGI handler gets the lifespan protocol answered for it, which it does not speak.
- Flask: an unhandled exception reaches devreload's error page (``PROPAGATE_EXCEPTIONS``,
  where tracebacks are shown), never Werkzeug's debugger, which runs code; templates are
  re-read when they change (``TEMPLATES_AUTO_RELOAD``) even outside the project folder.
- Every app: an exception raised before the response started gets the error page
  (:mod:`devreload.web.request_errors`).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from devreload.errors import DevreloadError
from devreload.log import default_logger
from devreload.web.request_errors import (
    Receive,
    RequestErrors,
    RequestErrorsASGI,
    Scope,
    Send,
    show_request_errors,
)


class DjangoCheckError(DevreloadError):
    """Django's system checks found errors: the app would fail on requests."""


def prepare(
    app: Any, show_errors: bool, allowed_hosts: Sequence[str] = (), *, asgi: bool | None = None
) -> Any:
    """``app`` ready for development: its framework's conveniences applied, and the
    request error page around it (``show_errors``: with tracebacks; answered for
    localhost, IP literals and ``allowed_hosts``). An app prepared already is returned
    as it is. ``asgi``: the app's kind, when the caller knows it."""
    if isinstance(app, (RequestErrors, RequestErrorsASGI)):
        return app
    app = _django(app)
    _flask(app, show_errors)
    return show_request_errors(app, show_errors, allowed_hosts, asgi=asgi)


def _instance_of(app: Any, module: str, name: str) -> bool:
    """``isinstance(app, module.name)`` when that module is imported already, else False."""
    cls = getattr(sys.modules.get(module), name, None)
    return isinstance(cls, type) and isinstance(app, cls)


# --------------------------------------------------------------------------- Django


def _django(app: Any) -> Any:
    """A Django handler checked and (in DEBUG) serving static files; any other app as is."""
    wsgi = _instance_of(app, "django.core.handlers.wsgi", "WSGIHandler")
    if not (wsgi or _instance_of(app, "django.core.handlers.asgi", "ASGIHandler")):
        return app
    check_django()
    from django.apps import apps
    from django.conf import settings

    if (
        settings.DEBUG
        and settings.STATIC_URL
        and apps.is_installed("django.contrib.staticfiles")
        and not _instance_of(app, "django.contrib.staticfiles.handlers",
                             "StaticFilesHandlerMixin")
    ):
        from django.contrib.staticfiles.handlers import (
            ASGIStaticFilesHandler,
            StaticFilesHandler,
        )

        app = StaticFilesHandler(app) if wsgi else ASGIStaticFilesHandler(app)
    return app if wsgi else WithoutLifespan(app)


class WithoutLifespan:
    """Django's ASGI handler refuses the lifespan protocol (it raises), and devreload runs
    uvicorn with lifespan on, so that a failing startup is a failed start: this answers
    lifespan for such an app, and passes everything else to it."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message.get("type") == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message.get("type") == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def check_django() -> None:
    """What ``runserver`` does before it serves: import the URLconf (Django would do it at
    the first request, and fail every request with a long traceback), then run the system
    checks. Errors raise DjangoCheckError; warnings are logged."""
    from django.core import checks
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - the import is the point
    messages = [m for m in checks.run_checks() if not m.is_silenced()]
    log = default_logger()
    for message in messages:
        if not message.is_serious():
            log.warning("Django system check: %s", " ".join(str(message).split()))
    errors = [" ".join(str(m).split()) for m in messages if m.is_serious()]
    if errors:
        count = f"{len(errors)} error{'s' if len(errors) > 1 else ''}"
        raise DjangoCheckError(f"Django's system checks found {count}: " + "; ".join(errors))


# --------------------------------------------------------------------------- Flask


def _flask(app: Any, show_errors: bool) -> None:
    """Settings the app left unset (None), set the way ``flask run --debug`` would."""
    if not _instance_of(app, "flask.app", "Flask"):
        return
    config = app.config
    if show_errors and config.get("PROPAGATE_EXCEPTIONS") is None:
        config["PROPAGATE_EXCEPTIONS"] = True
    if config.get("TEMPLATES_AUTO_RELOAD") is None:
        config["TEMPLATES_AUTO_RELOAD"] = True
        if "jinja_env" in vars(app):  # created already: it read the setting then
            app.jinja_env.auto_reload = True
