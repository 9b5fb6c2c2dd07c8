"""A custom monitor factory for DEVRELOAD_MONITOR=custom_monitor.factory.

It wraps the polling monitor and says (on stderr and in custom-monitor.log) that it was used,
and logs every path added to it.
"""

import os
import sys
from typing import Any


def factory(callback: Any, **kwargs: Any) -> Any:
    from devreload.filemon.polling import PollingFileMonitor

    print(f"CUSTOM MONITOR created pid={os.getpid()} options={sorted(kwargs)}", file=sys.stderr)
    sys.stderr.flush()
    inner = PollingFileMonitor(callback, **kwargs)

    class Wrapped:
        def add_path(self, path: str) -> None:
            with open("custom-monitor.log", "a") as f:
                f.write(f"{path}\n")
            inner.add_path(path)

        def start(self) -> None:
            inner.start()

        def stop(self) -> None:
            inner.stop()

        def join(self) -> None:
            inner.join()

        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

    return Wrapped()
