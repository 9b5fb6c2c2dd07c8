"""A reload strategy with a trigger of its own: a file named ``go`` appearing (think of a
message queue or a webhook); the app's files are watched as usual."""

import os
import sys
import threading

from devreload import Reloader


def main() -> None:
    print(f"READY pid={os.getpid()} token=strategy", flush=True)
    threading.Event().wait()


class ReloadOnGo(Reloader):
    def startup(self) -> None:
        super().startup()
        threading.Thread(target=self._wait_for_go, daemon=True).start()

    def _wait_for_go(self) -> None:
        while not os.path.exists("go"):
            threading.Event().wait(0.02)
        self.request_reload("go appeared")


if __name__ == "__main__":
    sys.exit(ReloadOnGo("app_strategy:main").run())
