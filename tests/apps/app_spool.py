"""A queue worker: takes the jobs waiting in spool/ as a batch (reads them all), then
works on each, writes its result to done/ and removes the job from spool/."""

import os
import time

TOKEN = "one"

for folder in ("spool", "done"):
    os.makedirs(folder, exist_ok=True)
print(f"READY pid={os.getpid()} token={TOKEN}", flush=True)
while True:
    batch = {}
    for name in sorted(os.listdir("spool")):
        with open(f"spool/{name}") as f:
            batch[name] = f.read()
    for name, job in batch.items():
        time.sleep(0.3)  # the work: longer than a restart takes to notice a change
        with open(f"done/{name}", "w") as f:
            f.write(f"{job} by {os.getpid()} {TOKEN}")
        os.remove(f"spool/{name}")
        print(f"DONE {name} pid={os.getpid()}", flush=True)
    time.sleep(0.02)
