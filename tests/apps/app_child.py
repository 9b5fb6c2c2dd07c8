"""Spawn a long-running child process (prints CHILD pid=...) and wait: no orphan may survive."""

import os
import subprocess
import sys
import threading

import helper

if __name__ == "__main__":
    child = subprocess.Popen([sys.executable, "-c", "import threading; threading.Event().wait()"])
    print(f"CHILD pid={child.pid}", flush=True)
    print(f"READY pid={os.getpid()} token={helper.TOKEN}", flush=True)
    threading.Event().wait()
