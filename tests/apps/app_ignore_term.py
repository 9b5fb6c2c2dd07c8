"""Ignore SIGTERM (a worker that hangs on shutdown): only SIGKILL stops it."""

import os
import signal
import threading

import helper

if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"READY pid={os.getpid()} token={helper.TOKEN}", flush=True)
    threading.Event().wait()
