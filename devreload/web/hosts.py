"""Which ``Host`` devreload's own pages answer: the guard against DNS rebinding.

A page on another site can rebind its own name to 127.0.0.1 and then read, as same-origin,
whatever answers there: the error page's traceback (and any secret in it) or the event
stream. The browser still sends that site's name in ``Host``, so devreload's pages (the
error pages, ``/__devreload__/``) answer only names that cannot be rebound: ``localhost``,
``*.localhost``, IP literals, and the names the user allows (``allowed_hosts``). The app's
own responses are never filtered: that is the app's business.

Allowed entries are names as in Django's ``ALLOWED_HOSTS``: ``.example.com`` allows
example.com and its subdomains, ``*.example.com`` its subdomains only, ``*`` every name.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable

from devreload.log import default_logger

#: How the refusal tells the user to allow a name.
HOW_TO_ALLOW = "add it with --allowed-host / allowed_hosts"
#: The headers of the 403 (Content-Length is the caller's).
REFUSAL_HEADERS = [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")]

_warned: set[str] = set()
_warned_lock = threading.Lock()


def split_host(host: str) -> str | None:
    """The name in a ``Host`` value, lowercased, without port or trailing dot; an IPv6
    literal keeps its brackets. None when the value is not a host at all."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        rest = host[end + 1 :] if end > 0 else "?"
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return None
        return host[: end + 1]
    name, sep, port = host.rpartition(":")
    if sep:
        if not port.isdigit() or ":" in name:
            return None
        host = name
    host = host.removesuffix(".")
    if not host or any(c in host for c in " \t/\\@?#[]"):
        return None
    return host


def _is_ip_literal(name: str) -> bool:
    if name.startswith("[") and name.endswith("]"):
        try:
            ipaddress.IPv6Address(name[1:-1])
        except ValueError:
            return False
        return True
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def _entry(entry: str) -> str | None:
    """An ``allowed_hosts`` entry as ``_matches`` takes it: lowercased, without a port
    (``myhost:8080`` means myhost), its ``*.`` or ``.`` kept; None for an empty one."""
    entry = entry.strip().lower()
    if entry == "*":
        return entry
    prefix = next((p for p in ("*.", ".") if entry.startswith(p)), "")
    name = split_host(entry[len(prefix) :]) if entry[len(prefix) :] else None
    return None if name is None else prefix + name


def _matches(name: str, entry: str) -> bool:
    """One ``allowed_hosts`` entry against a name (both as ``split_host`` gives them)."""
    if entry == "*":
        return True
    if entry.startswith("*."):
        return name.endswith(entry[1:])
    if entry.startswith("."):
        return name == entry[1:] or name.endswith(entry)
    return name == entry


def host_allowed(host: str | None, allowed: Iterable[str] = ()) -> bool:
    """Whether devreload's own pages may answer a request with this ``Host``.

    A request without one (an HTTP/1.0 tool) is answered: a browser always sends it.
    """
    if host is None or not host.strip():
        return True
    name = split_host(host)
    if name is None:
        return False
    if name == "localhost" or name.endswith(".localhost") or _is_ip_literal(name):
        return True
    return any(_matches(name, wanted) for wanted in map(_entry, allowed) if wanted)


def shown(host: str) -> str:
    """The name a refusal shows: without the port, printable, not too long (it comes from
    the request)."""
    name = split_host(host) or host.strip()
    name = "".join(c if c.isprintable() and c.isascii() else "?" for c in name)
    return name[:100] + ("..." if len(name) > 100 else "")


def refusal(host: str) -> str:
    """The one line a refused request gets, saying how to allow the name; it is logged
    once per name, since the refused page may be a stream the developer never sees."""
    name = shown(host)
    line = f"devreload: Host {name!r} is not allowed; {HOW_TO_ALLOW}"
    with _warned_lock:
        first = name not in _warned and len(_warned) < 100  # bounded: names come from outside
        if first:
            _warned.add(name)
    if first:
        default_logger().warning(
            "refused a request for Host %r to devreload's own pages (a guard against DNS "
            "rebinding); if that is your name for this machine, %s", name, HOW_TO_ALLOW
        )
    return line


def refusal_body(host: str) -> bytes:
    """The 403's body: the refusal line."""
    return (refusal(host) + "\n").encode()
