"""What kind of app an object is: WSGI, ASGI, or not an app at all.

Asked once where an app is loaded; the answer travels with it from there.
"""

from __future__ import annotations

import inspect


def is_asgi(app: object) -> bool:
    """True for an ASGI 3 app: a coroutine function (or an object whose ``__call__`` is one)
    taking scope, receive and send."""
    if inspect.isclass(app) or not callable(app):
        return False
    call: object = app if inspect.iscoroutinefunction(app) else type(app).__call__
    if not inspect.iscoroutinefunction(call):
        return False
    try:
        inspect.signature(app).bind(None, None, None)
    except TypeError:
        return False
    except ValueError:
        return True
    return True


#: What an object that cannot be served is not; importapp and paste both say it so.
NOT_AN_APP = "not an app (a WSGI or ASGI callable)"


def is_app(obj: object) -> bool:
    """Whether ``obj`` can be served at all: a WSGI or an ASGI app is a callable (a
    function, an object with ``__call__``, a class). A factory that returned ``None`` or
    a number is refused before any server starts, not at its first request."""
    return callable(obj)
