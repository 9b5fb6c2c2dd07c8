"""Reads a setting from a plain file, and keeps writing a state file it also reads."""

import os
import threading
import time

TOKEN = "one"

with open("greeting.txt") as f:
    greeting = f.read().strip()
with open("state.txt", "a") as f:
    f.write("start\n")
with open("state.txt") as f:
    starts = f.read().count("start")
print(f"READY pid={os.getpid()} token={TOKEN} greeting={greeting} starts={starts}", flush=True)


def keep_writing() -> None:
    while True:
        with open("state.txt", "a") as f:
            f.write(f"tick {os.getpid()}\n")
        time.sleep(0.02)


threading.Thread(target=keep_writing, daemon=True).start()
threading.Event().wait()
