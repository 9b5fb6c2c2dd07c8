"""Exit with 75 (EX_TEMPFAIL: "restart me") the first time, run normally afterwards."""

import os
import sys
import threading

MARKER = "exited-once"

if __name__ == "__main__":
    if not os.path.exists(MARKER):
        with open(MARKER, "w") as f:
            f.write(str(os.getpid()))
        print(f"EXITING code=75 pid={os.getpid()}", flush=True)
        sys.exit(75)
    print(f"READY pid={os.getpid()} token=after75", flush=True)
    threading.Event().wait()
