"""The web process: answers with its view, the shared token and its pid."""

import os

import shared

VIEW = "v1"


def app(environ, start_response):  # type: ignore[no-untyped-def]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{VIEW} {shared.TOKEN} {os.getpid()} {os.environ.get('GREETING')}".encode()]


def make(global_config, **settings):  # type: ignore[no-untyped-def]
    return app
