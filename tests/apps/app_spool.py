"""A queue worker: claims each job dropped in spool/ by moving it to claimed/, reads it,
works on it, writes the result to done/ and removes the claim."""

import os
import time

TOKEN = "one"

for folder in ("spool", "claimed", "done"):
    os.makedirs(folder, exist_ok=True)
print(f"READY pid={os.getpid()} token={TOKEN}", flush=True)
while True:
    for name in sorted(os.listdir("spool")):
        os.rename(f"spool/{name}", f"claimed/{name}")
        with open(f"claimed/{name}") as f:
            job = f.read()
        time.sleep(0.3)  # the work: longer than a restart takes to notice a change
        with open(f"done/{name}", "w") as f:
            f.write(f"{job} by {os.getpid()} {TOKEN}")
        os.remove(f"claimed/{name}")
        print(f"DONE {name} pid={os.getpid()}", flush=True)
    time.sleep(0.02)
