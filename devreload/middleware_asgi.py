"""The live-reload ASGI middleware, at its documented path (it lives in
:mod:`devreload.web.asgi`)."""

from devreload.web.asgi import LiveReloadASGI

__all__ = ["LiveReloadASGI"]
