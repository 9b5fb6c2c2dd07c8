"""Import a module late: only once the file "go" appears in the working folder.

The test creates "go" after READY; the app then imports late_helper and prints LATE with its
TOKEN. A restart re-runs everything (and, "go" being there, imports late_helper at once).
"""

import os
import threading

if __name__ == "__main__":
    print(f"READY pid={os.getpid()} token=-", flush=True)
    stop = threading.Event()
    while not os.path.exists("go"):
        stop.wait(0.01)
    import late_helper

    print(f"LATE pid={os.getpid()} token={late_helper.TOKEN}", flush=True)
    stop.wait()
