"""A tiny ASGI app with lifespan events: startup and shutdown run on every restart."""

import os

MESSAGE = "Hello from an ASGI app"


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            event = message["type"].rsplit(".", 1)[-1]
            print(f"lifespan {event} pid={os.getpid()}", flush=True)
            await send({"type": message["type"] + ".complete"})
            if event == "shutdown":
                return
    body = f"{MESSAGE} (pid {os.getpid()})\n".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def make_app(global_config, **settings):
    return app
