"""Use the worker-side API: devreload.watch_files() and devreload.trigger_reload().

At start it asks the monitor to watch "api-watched.txt" (and prints its content). Then it waits
for a file "reload-request" to appear; it removes it and calls devreload.trigger_reload().
"""

import os
import threading

import devreload


def content(name: str) -> str:
    try:
        with open(name) as f:
            return f.read().strip()
    except FileNotFoundError:
        return "<missing>"


if __name__ == "__main__":
    devreload.watch_files([os.path.abspath("api-watched.txt")])
    print(
        f"READY pid={os.getpid()} token={content('api-watched.txt')} "
        f"active={devreload.is_active()}",
        flush=True,
    )
    stop = threading.Event()
    while not os.path.exists("reload-request"):
        stop.wait(0.01)
    os.remove("reload-request")
    print(f"TRIGGERING pid={os.getpid()}", flush=True)
    devreload.trigger_reload()
    stop.wait()
