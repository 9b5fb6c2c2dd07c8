"""A program with buffered output and an atexit handler, restarted by devreload run."""

import atexit
import os
import sys
import threading

TOKEN = "one"
out = open(f"buffered-{os.getpid()}.txt", "w")  # noqa: SIM115 - closed at exit, on purpose
out.write("written before the restart, never flushed by hand\n")
atexit.register(lambda: print(f"ATEXIT pid={os.getpid()}", file=sys.stderr, flush=True))
print(f"READY pid={os.getpid()} token={TOKEN}", flush=True)
threading.Event().wait()
