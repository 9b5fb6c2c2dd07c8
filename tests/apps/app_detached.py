"""Starts children that leave its process group and session, as apps and their tools do:
``subprocess.Popen(..., start_new_session=True)`` and ``setsid cmd &`` from a shell."""

import os
import subprocess
import threading

TOKEN = "one"
popen = subprocess.Popen(["sleep", "120"], start_new_session=True)
shell = subprocess.run(
    "setsid sleep 121 >/dev/null 2>&1 & echo $!", shell=True, close_fds=False,
    capture_output=True, text=True, check=True,
)
print(f"CHILDREN popen={popen.pid} setsid={shell.stdout.strip()}", flush=True)
print(f"READY pid={os.getpid()} token={TOKEN}", flush=True)
threading.Event().wait()
