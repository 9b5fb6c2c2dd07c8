"""Import a helper, announce readiness with its TOKEN, then wait until stopped.

Reads optional files named on the command line and prints their contents in the READY line, so
that a test can tell which version of a watched non-Python file the worker saw.
"""

import os
import sys
import threading

import helper
import ignored_mod


def extras() -> str:
    out = []
    for name in sys.argv[1:]:
        try:
            with open(name) as f:
                out.append(f"{name}={f.read().strip()}")
        except FileNotFoundError:
            out.append(f"{name}=<missing>")
    return " ".join(out)


if __name__ == "__main__":
    print(
        f"READY pid={os.getpid()} token={helper.TOKEN} ignored={ignored_mod.VALUE} {extras()}",
        flush=True,
    )
    threading.Event().wait()
