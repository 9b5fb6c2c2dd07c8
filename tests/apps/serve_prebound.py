"""Serve a fixture app on a listening socket inherited as fd SERVE_FD, like a worker does."""

import os
import socket
import sys

import serve_apps

from devreload.servers.base import Bounds
from devreload.servers.choice import choose, serve_on_sockets

if __name__ == "__main__":
    sock = socket.socket(fileno=int(os.environ["SERVE_FD"]))
    app = serve_apps.asgi_app if sys.argv[1] == "asgi" else serve_apps.wsgi_app
    serve_on_sockets(
        app,
        [sock],
        choose(sys.argv[1] == "asgi", "auto", {}),
        on_ready=lambda: print(f"READY pid={os.getpid()}", flush=True),
        bounds=Bounds(float(os.environ.get("GRACE", "2")), float(os.environ.get("GRACE", "2"))),
    )
    print(f"STOPPED pid={os.getpid()}", flush=True)
