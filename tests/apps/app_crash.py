"""Import broken_mod, which the test writes broken first (an exception, or a SyntaxError)."""

import os
import threading

import broken_mod

if __name__ == "__main__":
    print(f"READY pid={os.getpid()} token={broken_mod.TOKEN}", flush=True)
    threading.Event().wait()
