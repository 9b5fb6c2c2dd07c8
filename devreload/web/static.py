"""The folders a framework serves as static files: a change there is pushed to open pages
(a stylesheet swapped in place, another asset a page reload), never a restart.

Found in the worker on the loaded app: Flask's static folders (the app's and its
blueprints'), Django's staticfiles finders, Pyramid's static views and Starlette's
(FastAPI's) ``StaticFiles`` mounts. Recognised by class through ``sys.modules``, like
:mod:`~devreload.web.frameworks`: nothing is imported for an app that does not use them.
Installed packages' own static files (Django's admin) never change: they are left out.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

from devreload.log import default_logger


def static_folders(app: Any) -> list[str]:
    """The project's folders ``app`` serves static files from, absolute, once each."""
    found: dict[str, None] = {}
    for framework in (_flask, _django, _pyramid, _starlette):
        try:
            folders = list(framework(app))
        except Exception as exc:  # a convenience: it never stands in the app's way
            default_logger().debug("static folders not found (%s: %s)", type(exc).__name__, exc)
            continue
        for folder in folders:
            path = os.path.abspath(folder)
            if os.path.isdir(path) and not _installed(path):
                found[path] = None
    return list(found)


def _installed(path: str) -> bool:
    parts = path.split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts


def _instance_of(app: Any, module: str, name: str) -> bool:
    cls = getattr(sys.modules.get(module), name, None)
    return isinstance(cls, type) and isinstance(app, cls)


def _flask(app: Any) -> Iterator[str]:
    if not (_instance_of(app, "flask.app", "Flask") or _instance_of(app, "quart.app", "Quart")):
        return
    for owner in (app, *app.blueprints.values()):
        if owner.static_folder:
            yield owner.static_folder


def _django(app: Any) -> Iterator[str]:
    """Where ``findstatic`` looks: ``STATICFILES_DIRS`` and each installed app's ``static``."""
    if "django.contrib.staticfiles" not in sys.modules:
        return
    from django.apps import apps
    from django.contrib.staticfiles import finders

    if not apps.is_installed("django.contrib.staticfiles"):
        return
    for finder in finders.get_finders():
        for _, root in getattr(finder, "locations", ()):
            yield root
        for storage in getattr(finder, "storages", {}).values():
            location = getattr(storage, "location", None)
            if location:
                yield location


def _pyramid(app: Any) -> Iterator[str]:
    registry = getattr(app, "registry", None)
    if registry is None or "pyramid.interfaces" not in sys.modules:
        return
    from pyramid.interfaces import IStaticURLInfo
    from pyramid.path import AssetResolver

    info = registry.queryUtility(IStaticURLInfo)
    for _, spec, _ in getattr(info, "registrations", ()):
        yield AssetResolver().resolve(spec).abspath() if ":" in spec else spec


def _starlette(app: Any) -> Iterator[str]:
    static_files = getattr(sys.modules.get("starlette.staticfiles"), "StaticFiles", None)
    if not isinstance(static_files, type):
        return
    for route in getattr(app, "routes", ()):
        mounted = getattr(route, "app", None)
        if isinstance(mounted, static_files):
            yield from (str(d) for d in getattr(mounted, "all_directories", ()) or ())
