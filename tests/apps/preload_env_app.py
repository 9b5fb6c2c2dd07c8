"""An app that sets an environment variable, then imports a library that reads it."""

import os
import threading

import standin_pure

TOKEN = "one"

os.environ["STANDIN_MODE"] = "set-by-app"
import standin_env  # noqa: E402 - the point: imported after the app set its environment

print(f"READY pid={os.getpid()} token={TOKEN} {standin_pure.VALUE} value={standin_env.MODE}",
      flush=True)
threading.Event().wait()
