"""Is in ``__del__``, where Python ignores exceptions, when the SIGTERM that stops it
lands (as it may land in a weakref callback of the import system), then waits."""

import atexit
import os
import threading
import time


class Slow:
    def __del__(self) -> None:
        print("IN __del__", flush=True)
        time.sleep(3)


atexit.register(lambda: print("ATEXIT ran", flush=True))
print(f"READY pid={os.getpid()} token=one", flush=True)
slow = Slow()
del slow
threading.Event().wait()
