"""Holds a resource tied to the process that imported it (a connection pool made at import)."""

import os

PID = os.getpid()


def check() -> None:
    if os.getpid() != PID:
        raise RuntimeError("standin_pid was imported in another process")
