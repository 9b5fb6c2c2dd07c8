"""Ask for a restart (exit 75) as soon as it starts, for as long as helper.TOKEN says "loop"."""

import os
import sys
import threading

import helper

if __name__ == "__main__":
    if helper.TOKEN == "loop":
        print(f"EXITING code=75 pid={os.getpid()}", flush=True)
        sys.exit(75)
    print(f"READY pid={os.getpid()} token={helper.TOKEN}", flush=True)
    threading.Event().wait()
