"""Stop at breakpoint() (the test answers pdb over a pseudo-terminal), then go on."""

import os
import threading

if __name__ == "__main__":
    print(f"READY pid={os.getpid()} token=bp", flush=True)
    x = 6
    breakpoint()
    print(f"AFTER BREAKPOINT x={x}", flush=True)
    threading.Event().wait()
