"""waitress's request threads, started as requests need them (real threads, real tasks)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from helpers import wait_until

from devreload.servers.waitress_pool import GrowingDispatcher


class Task:
    """What waitress queues for a request: ``service()`` runs in a dispatcher thread."""

    def __init__(self, release: threading.Event | None = None) -> None:
        self.release = release
        self.thread: str | None = None
        self.started = threading.Event()
        self.done = threading.Event()

    def service(self) -> None:
        self.thread = threading.current_thread().name
        self.started.set()
        if self.release is not None:
            self.release.wait(10)
        self.done.set()


@pytest.fixture
def dispatcher() -> Iterator[GrowingDispatcher]:
    pool = GrowingDispatcher(most=2)
    # Its first thread waits for work (a request coming sooner gets a thread of its own).
    wait_until(lambda: pool.active_count == 0, timeout=5, message="the thread never waited")
    yield pool
    pool.shutdown(timeout=5)


def test_one_request_at_a_time_needs_one_thread(dispatcher: GrowingDispatcher) -> None:
    for _ in range(5):
        task = Task()
        dispatcher.add_task(task)
        assert task.done.wait(5)
        assert task.thread == "waitress-0"
        # A request after the answer: the thread went back to wait for it.
        wait_until(lambda: dispatcher.active_count == 0, timeout=5,
                   message="the thread never went back to wait")
    assert dispatcher.threads == {0}


def test_a_request_that_finds_every_thread_busy_starts_one_up_to_the_limit(
    dispatcher: GrowingDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    first, second, third = Task(release), Task(release), Task(release)
    with caplog.at_level(logging.WARNING, logger="waitress.queue"):
        dispatcher.add_task(first)
        assert first.started.wait(5)
        dispatcher.add_task(second)
        assert second.started.wait(5), "a second thread was started for the second request"
        assert not caplog.records, "a thread started for it: the request did not queue"
        dispatcher.add_task(third)  # both threads busy, none may be added: it queues
        assert [r.getMessage() for r in caplog.records] == ["Task queue depth is 1"]
    assert dispatcher.threads == {0, 1}
    release.set()
    for task in (first, second, third):
        assert task.done.wait(5)
    assert {first.thread, second.thread} == {"waitress-0", "waitress-1"}


def test_shutdown_ends_every_thread_started(dispatcher: GrowingDispatcher) -> None:
    release = threading.Event()
    tasks = [Task(release), Task(release)]
    for task in tasks:
        dispatcher.add_task(task)
    wait_until(lambda: all(t.started.is_set() for t in tasks), timeout=5,
               message="both requests never ran")
    release.set()
    dispatcher.shutdown(timeout=5)
    assert dispatcher.threads == set()
