"""waitress's request threads, started as requests need them.

waitress starts all its threads before it serves, one after the other, each start waiting
to hear that its thread runs: with eight of them, 2-4 ms of every restart, before the
first request can be answered. One thread answers a developer's requests one at a time;
the others are started the moment a request finds every running thread busy, up to the
``threads`` option, and then stay, as waitress's would.
"""

from __future__ import annotations

from typing import Any

from waitress.task import ThreadedTaskDispatcher


class GrowingDispatcher(ThreadedTaskDispatcher):  # type: ignore[misc]
    """waitress's dispatcher, with one thread at first and one more for each request that
    finds none idle (the first thread too, until it waits for work), up to ``most``."""

    def __init__(self, most: int) -> None:
        super().__init__()
        self.most = max(1, most)
        self.set_thread_count(1)

    def add_task(self, task: Any) -> None:
        with self.lock:
            self.queue.append(task)
            self.queue_cv.notify()
            running = len(self.threads) - self.stop_count
            waiting = len(self.queue) - (running - self.active_count)
            if waiting > 0 and running < self.most and not self.stop_count:
                self._start_one()
                waiting -= 1  # a new thread takes a task before it ever waits
            if waiting > 0:
                self.queue_logger.warning("Task queue depth is %d", waiting)

    def _start_one(self) -> None:
        """As ``set_thread_count`` starts each thread (the caller holds the lock)."""
        number = 0
        while number in self.threads:
            number += 1
        self.threads.add(number)
        self.active_count += 1
        self.start_new_thread(self.handler_thread, number)
