"""Starts a daemon the classic way, as daemonising libraries do: fork, ``setsid``, fork
again, and no exec, so the daemon holds every descriptor the worker had (its listening
socket too) and runs the worker's own code."""

import os
import time

TOKEN = "one"


def app(environ, start_response):  # type: ignore[no-untyped-def]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [TOKEN.encode()]


def _daemonize() -> None:
    first = os.fork()
    if first:
        os.waitpid(first, 0)
        return
    os.setsid()
    if os.fork():
        os._exit(0)
    print(f"DAEMON pid={os.getpid()} token={TOKEN}", flush=True)
    while True:
        time.sleep(1)


_daemonize()
