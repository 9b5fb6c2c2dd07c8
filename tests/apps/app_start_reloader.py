"""A program using the library API: start_reloader() with a before_reload callback.

The callback runs in the monitor; it appends the monitor's pid to before_reload.log.
"""

import os
import sys
import threading

import devreload


def before_reload() -> None:
    with open("before_reload.log", "a") as f:
        f.write(f"{os.getpid()}\n")


def main(*args: object, **kwargs: object) -> None:
    import helper

    reloader = devreload.get_reloader()
    print(
        f"READY pid={os.getpid()} token={helper.TOKEN} args={list(args)} "
        f"kwargs={sorted(kwargs.items())} proxy={type(reloader).__name__}",
        flush=True,
    )
    threading.Event().wait()


if __name__ == "__main__":
    print(f"MONITOR pid={os.getpid()}", flush=True)
    devreload.start_reloader(
        "app_start_reloader.main",
        reload_interval=0.05,
        worker_args=["a1"],
        worker_kwargs={"k": "v"},
        before_reload=before_reload,
        verbose=int(os.environ.get("APP_VERBOSE", "1")),
    )
    sys.exit("start_reloader returned in the monitor")
