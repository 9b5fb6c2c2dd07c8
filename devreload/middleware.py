"""The live-reload WSGI middleware, at its documented path (it lives in
:mod:`devreload.web.wsgi`)."""

from devreload.web.wsgi import LiveReload, livereload_filter

__all__ = ["LiveReload", "livereload_filter"]
