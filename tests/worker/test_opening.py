"""websync.worker.opening: a cancellable handshake asks whether it was cancelled when its waker fires."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from websync.net.options import ConnectOptions
from websync.net.tracing import Tracer
from websync.net.transport import Waker
from websync.worker.opening import OpenCancelled, open_connection

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that accepts TCP (the kernel's backlog) and never answers the upgrade request."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield f"ws://127.0.0.1:{listener.getsockname()[1]}/"


def test_a_handshake_with_a_waker_asks_only_when_woken(silent_url: str) -> None:
    waker = Waker()
    waker.open()
    asked: list[bool] = []
    stop = threading.Event()
    woken_after_quiet = threading.Event()

    def cancelled() -> bool:
        asked.append(stop.is_set())
        return stop.is_set()

    def stop_later() -> None:
        woken_after_quiet.wait(5)
        stop.set()
        waker.wake()

    threading.Thread(target=stop_later, daemon=True).start()
    timer = threading.Timer(0.5, woken_after_quiet.set)  # ten slices of CANCEL_CHECK_INTERVAL
    timer.start()
    try:
        with pytest.raises(OpenCancelled):
            open_connection(silent_url, ConnectOptions(proxy=None), Tracer("test"), cancelled=cancelled, waker=waker)
    finally:
        timer.cancel()
        waker.close()
    # Asked before connecting, before sending, before the wait; then once, when woken.
    assert asked == [False, False, False, True]


def test_without_a_waker_a_handshake_asks_every_slice(silent_url: str) -> None:
    count = [0]

    def cancelled() -> bool:
        count[0] += 1
        return count[0] > 6

    with pytest.raises(OpenCancelled):
        open_connection(silent_url, ConnectOptions(proxy=None), Tracer("test"), cancelled=cancelled)
    assert count[0] == 7  # three before the wait, then one a slice until it said so
