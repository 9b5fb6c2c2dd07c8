"""Serve an app from a plain script: ``python serve_app.py`` (or ``python -m serve_app``).

With reload=True the script is re-run in a worker on every edit; this process only
watches and holds the socket.
"""

import os

import devreload

MESSAGE = "Hello from a script"


def app(environ, start_response):
    body = f"{MESSAGE} (pid {os.getpid()})\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    devreload.serve(app, reload=True, host="127.0.0.1", port=port)
