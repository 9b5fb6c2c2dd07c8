"""Print READY and exit 0: the monitor should end with 0 too."""

import os

print(f"READY pid={os.getpid()} token=done", flush=True)
