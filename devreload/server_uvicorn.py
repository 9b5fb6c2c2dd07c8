"""ASGI apps under uvicorn: option conversion from ini strings, and a ``uvicorn.Server``
that closes its listeners the moment it is told to stop and drains within a bound,
without uvicorn's fixed pauses."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import socket
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import Any

from devreload.errors import ServerOptionError
from devreload.livereload import close_streams
from devreload.options import asbool
from devreload.servers import FRESH_CONNECTION_GRACE, ReadyCallback

ASGI = True
#: devreload's dev defaults, under the user's options.
DEFAULTS: dict[str, Any] = {"lifespan": "on"}
#: Keys devreload sets itself: the sockets decide where to listen, the monitor reloads.
RESERVED = frozenset(
    {
        "app",
        "host",
        "port",
        "uds",
        "fd",
        "reload",
        "reload_dirs",
        "reload_delay",
        "reload_includes",
        "reload_excludes",
        "workers",
        "callback_notify",
    }
)


def convert_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``uvicorn.Config`` keyword arguments, ini strings turned into the annotated types."""
    import uvicorn

    parameters = inspect.signature(uvicorn.Config.__init__).parameters
    out: dict[str, Any] = dict(DEFAULTS)
    for key, value in options.items():
        if key in RESERVED:
            raise ServerOptionError("uvicorn", key, "is set by devreload; use listen instead")
        if key not in parameters or key == "self":
            raise ServerOptionError("uvicorn", key, "unknown option")
        out[key] = _convert(key, value, str(parameters[key].annotation))
    return out


def _convert(key: str, value: Any, annotation: str) -> Any:
    """Turn an ini string into the type a uvicorn.Config parameter is annotated with."""
    if not isinstance(value, str):
        return value
    kinds = {part.strip() for part in annotation.split("|")}
    text = value.strip()
    try:
        if "None" in kinds and text.lower() in ("", "none"):
            return None
        if "bool" in kinds:
            return asbool(text)
        if "int" in kinds:
            return int(text)
        if "float" in kinds:
            return float(text)
    except ValueError as exc:
        raise ServerOptionError("uvicorn", key, f"bad value {value!r} ({exc})") from None
    return value


def run(
    app: Any,
    sockets: Sequence[socket.socket],
    options: Mapping[str, Any],
    on_ready: ReadyCallback | None,
    graceful_timeout: float,
) -> None:
    """Serve until SIGTERM or SIGINT; then stop accepting, and drain."""
    import uvicorn

    options = dict(options)
    bound = options.pop("timeout_graceful_shutdown", None)
    timeout = graceful_timeout if bound is None else float(bound)
    if logging.getLogger().handlers:
        # Logging is configured already (an ini's sections): let uvicorn's loggers use it.
        options.setdefault("log_config", None)

    class Server(uvicorn.Server):
        """uvicorn, but closing its listeners the moment it is told to stop, and draining
        within ``timeout`` without uvicorn's fixed pauses."""

        loop: asyncio.AbstractEventLoop | None = None
        wake: asyncio.Event | None = None

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            self.loop = asyncio.get_running_loop()
            self.wake = asyncio.Event()
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit and on_ready is not None:
                on_ready()

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            self.should_exit = True
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self.stop_accepting)

        def stop_accepting(self) -> None:
            close_streams()
            # Stop reading the listeners without closing the asyncio servers yet: a
            # connection accepted a moment ago still gets its transport (closing first
            # makes asyncio drop it, a reset for the client).
            if self.loop is not None:
                for listener in getattr(self, "servers", []):
                    for sock in listener.sockets:
                        self.loop.remove_reader(sock.fileno())
            if self.wake is not None:
                self.wake.set()

        async def main_loop(self) -> None:
            counter = 0
            while not await self.on_tick(counter):
                assert self.wake is not None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), 0.1)
                counter = (counter + 1) % 864000

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            self.stop_accepting()
            assert self.loop is not None
            for _ in range(5):  # let just-accepted connections reach connection_made
                await asyncio.sleep(0)
            began = self.loop.time()
            deadline = began + timeout
            state = self.server_state
            closing: set[Any] = set()
            while (state.connections or state.tasks) and not self.force_exit:
                now = self.loop.time()
                if now >= deadline:
                    for task in state.tasks:
                        task.cancel()
                    break
                for connection in list(state.connections):
                    # A connection accepted just before the stop whose request is still on
                    # its way gets a moment to send it; any other closes after its response.
                    fresh = getattr(connection, "cycle", None) is None
                    if connection not in closing and (
                        not fresh or now >= began + FRESH_CONNECTION_GRACE
                    ):
                        connection.shutdown()
                        closing.add(connection)
                await asyncio.sleep(0.01)
            for listener in self.servers:
                listener.close()
            for sock in sockets or []:
                sock.close()
            if not self.force_exit:
                await self.lifespan.shutdown()

    config = uvicorn.Config(app, **options)
    Server(config).run(sockets=list(sockets))
