"""A queue consumer's loop: it imports its jobs and the shared module."""

import os
import time

import jobs
import shared

print(f"WORKER READY pid={os.getpid()} jobs={jobs.VERSION} shared={shared.TOKEN} "
      f"port={os.environ['PORT']} greeting={os.environ.get('GREETING')}", flush=True)
while True:
    time.sleep(0.2)
