"""Starts a child the plain way (no new session): it stays in the worker's process group,
which is what every platform can end with its worker."""

import os
import subprocess
import sys
import threading

TOKEN = "one"
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print(f"CHILD pid={child.pid}", flush=True)
print(f"READY pid={os.getpid()} token={TOKEN}", flush=True)
threading.Event().wait()
