"""Run as `devreload run -m pkgapp.main ARGS`: must run as __main__ with sys.argv set."""

import os
import sys
import threading

from pkgapp import helper

if __name__ == "__main__":
    print(f"READY pid={os.getpid()} token={helper.TOKEN} argv={sys.argv[1:]}", flush=True)
    threading.Event().wait()
