"""A tiny WSGI app: edit MESSAGE, the ini or templates/page.txt while it is served."""

import logging
import os

MESSAGE = "Hello from a WSGI app"

log = logging.getLogger("example")


def make_app(global_config, **settings):
    """PasteDeploy app factory: ``[app:main] use = call:app:make_app``.

    ``greeting=Howdy`` on the command line reaches the factory in ``global_config`` only:
    PasteDeploy drops a section's key that ``[DEFAULT]`` (where command-line variables go)
    also has, so a keyword default (``greeting="Hi"``) would never see it.

    The page template is read once, at startup, like most frameworks do: the ini's
    ``[devreload] watch_files`` makes an edit to it restart the app.
    """
    greeting = settings.get("greeting", global_config.get("greeting", "Hi"))
    with open(os.path.join(global_config["here"], "templates", "page.txt")) as f:
        template = f.read()

    def app(environ, start_response):
        body = template.format(greeting=greeting, message=MESSAGE, pid=os.getpid()).encode()
        log.info("answering %s", environ["PATH_INFO"])
        headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [body]

    return app
