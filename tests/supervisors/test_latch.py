"""supervisors.latch.Latch: a one-shot event in one lock, with threading.Event's results."""

from __future__ import annotations

import threading
import time

import pytest

from supervisors.latch import Latch

pytestmark = pytest.mark.timeout(10)


def test_unset_waits_time_out_as_an_event_does() -> None:
    latch, event = Latch(), threading.Event()
    for timeout in (0, -1, 0.01):
        assert latch.wait(timeout) is event.wait(timeout) is False
    assert not latch.is_set()


def test_set_wakes_every_waiter_and_stays_set() -> None:
    latch = Latch()
    woken: list[bool] = []
    waiters = [threading.Thread(target=lambda: woken.append(latch.wait())) for _ in range(5)]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.05)
    latch.set()
    latch.set()  # a second set changes nothing
    for waiter in waiters:
        waiter.join(5)
    assert woken == [True] * 5
    assert latch.is_set() and latch.wait() and latch.wait(0) and latch.wait(-1)


def test_a_timed_wait_ends_at_the_set() -> None:
    latch = Latch()
    threading.Timer(0.05, latch.set).start()
    assert latch.wait(5)
