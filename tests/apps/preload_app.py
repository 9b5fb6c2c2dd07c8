"""An app whose libraries see, at their import, what the app did first; ``argv[1]`` picks
the case (``env`` is ``preload_env_app.py``). It prints what they saw in its READY line,
then waits."""

import os
import sys
import threading

import standin_pure

TOKEN = "one"
CASE = sys.argv[1]

if CASE == "pid":
    import standin_pid


def settings_case() -> str:
    import standin_settings

    standin_settings.configure(cors="https://app.example")
    from standin_settings import views

    return views.CORS


def registry_case() -> str:
    import standin_registry

    standin_registry.setup("blog", "shop")
    from standin_registry import models

    return f"{models.READY}:{','.join(models.APPS)}"


def value() -> str:
    if CASE == "settings":
        return settings_case()
    if CASE == "registry":
        return registry_case()
    standin_pid.check()
    return "same-process"


print(f"READY pid={os.getpid()} token={TOKEN} {standin_pure.VALUE} value={value()}", flush=True)
threading.Event().wait()
