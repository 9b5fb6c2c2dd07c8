"""A queue consumer that finishes the job in hand before it restarts (cooperative mode)."""

import os
import sys
import time

import devreload

TOKEN = "one"
print(f"READY pid={os.getpid()} token={TOKEN}", flush=True)
job = 0
while True:
    job += 1
    print(f"JOB {job} start pid={os.getpid()}", flush=True)
    time.sleep(0.2)  # the work itself, which must not be cut short
    print(f"JOB {job} done pid={os.getpid()}", flush=True)
    if devreload.should_restart():
        print(f"LEAVING pid={os.getpid()}", flush=True)
        sys.exit(devreload.EXIT_RELOAD)
