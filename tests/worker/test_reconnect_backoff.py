"""Reconnects that never hammer: a server that accepts and then closes at once sees the worker's
attempts spaced by a jittered exponential backoff (issue 21), over 30 seconds."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest

import websync

WATCH = 30.0
"""How long the test watches the worker reconnect."""


class CloseAtOnce(websync.ServerHandler):
    """Accepts the WebSocket, then closes it (1000) before any message."""

    def init(self, request: Any) -> websync.Stop:
        return websync.Stop("normal")


class Counting(websync.Handler):
    """Records when each connection attempt starts and the attempt numbers it is told."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.starts: list[float] = []
        self.attempts: list[int] = []
        self.lock = threading.Lock()

    def connect(self) -> Any:
        with self.lock:
            self.starts.append(time.monotonic())
        return super().connect()

    def handle_disconnect(self, reason: Exception, attempt: int) -> websync.Reconnect | websync.Stop:
        with self.lock:
            self.attempts.append(attempt)
        return super().handle_disconnect(reason, attempt)


@pytest.mark.timeout(WATCH + 20)
@pytest.mark.slow
def test_accept_then_close_server_sees_exponentially_spaced_attempts(spawn):
    with websync.serve(CloseAtOnce, port=0) as server:
        handler = Counting(f"ws://127.0.0.1:{server.port}/")
        worker = spawn(handler, compression=None)
        time.sleep(WATCH)
        worker.stop(timeout=3)
    with handler.lock:
        starts, attempts = list(handler.starts), list(handler.attempts)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    print(f"\n{len(starts)} connection attempts in {WATCH:.0f} s; gaps: {[round(gap, 2) for gap in gaps]}")
    # Before: attempt was 1 after every connection, and the worker reconnected every 0.2 s (~5/s).
    # Now: nominal delays 0.2, 0.4, 0.8, … 25.6 s (7 fit in 30 s, 9 with the shortest jitter).
    assert 6 <= len(starts) <= 10, gaps
    assert attempts[: len(gaps)] == list(range(1, len(gaps) + 1))  # every short connection counts
    for attempt, gap in enumerate(gaps, start=1):
        nominal = websync.backoff(attempt, jitter=0)
        assert nominal / 2 <= gap <= nominal + 0.5, (attempt, gaps)  # + the handshake and close
    assert all(later > 1.5 * earlier for earlier, later in zip(gaps[1:], gaps[3:])), gaps  # grows
    ratios = [gap / websync.backoff(attempt, jitter=0) for attempt, gap in enumerate(gaps[2:], start=3)]
    assert max(ratios) - min(ratios) > 0.02, ratios  # jittered: not the nominal delays


def test_a_stable_connection_starts_the_count_again(spawn):
    """A connection that lasts ``stable_after`` seconds resets ``attempt`` to 1 when it ends."""
    closes = threading.Event()

    class CloseOnRequest(websync.ServerHandler):
        def handle_in(self, frame: websync.Text | websync.Binary) -> websync.Stop:
            return websync.Stop("normal")

    class Stable(Counting):
        stable_after = 0.5

        def handle_connect(self, response: Any) -> None:
            closes.set()

    with websync.serve(CloseOnRequest, port=0) as server:
        handler = Stable(f"ws://127.0.0.1:{server.port}/")
        worker = spawn(handler, compression=None)
        for _ in range(3):
            assert closes.wait(5)
            closes.clear()
            time.sleep(0.7)  # stable
            worker.send("close, please")
        deadline = time.monotonic() + 5
        while len(handler.attempts) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.stop(timeout=3)
    assert handler.attempts[:3] == [1, 1, 1]
