"""No deadlock under backpressure: a streaming sender and a paused reader, either side (issue 6).

The peer is a real ``websockets`` server (tests/peers/backpressure_server.py) that stops reading
its socket while its handler does not read, so TCP pushes back on the client; about 16 MiB go
each way, more than loopback's socket buffers hold. Not timed: each case only has to complete,
with pings answered while the client is blocked in ``send`` or not calling ``recv``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from peers.spawn import Spawned

import websync

pytestmark = pytest.mark.timeout(120)

SERVER = Path(__file__).parent / "peers" / "backpressure_server.py"
PAUSE = 1.0
"""Seconds a side stays paused (not reading)."""
CASES = [pytest.param(64 * 1024, 256, id="64KiB"), pytest.param(1024 * 1024, 16, id="1MiB")]
RECV_TIMEOUT = 15.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("backpressure") / "server.log"
    spawned = Spawned([sys.executable, "-u", str(SERVER)], r"PORT (\d+)", log)
    yield f"ws://127.0.0.1:{spawned.port}"
    spawned.stop()


def _stream(ws: websync.ClientConnection, payload: bytes, count: int) -> threading.Thread:
    """Send ``count`` messages from a thread of their own, as a streaming producer would."""

    def send_all() -> None:
        for _ in range(count):
            ws.send(payload)

    thread = threading.Thread(target=send_all, name="test-sender", daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(("size", "count"), CASES)
def test_client_streams_while_the_server_does_not_read(server: str, size: int, count: int) -> None:
    url = f"{server}/slow-reader?size={size}&count={count}&pause={PAUSE}"
    with websync.connect(url, compression=None, max_size=None, close_timeout=1) as ws:
        sender = _stream(ws, b"\xa5" * size, count)
        time.sleep(PAUSE / 4)
        assert sender.is_alive(), "the server's pause did not hold the sender back"
        # The server pings in the middle of its pause, while the sender is blocked in send().
        assert ws.recv(timeout=RECV_TIMEOUT) == f"done {count}"
        sender.join(RECV_TIMEOUT)
        assert not sender.is_alive()


@pytest.mark.parametrize(("size", "count"), CASES)
def test_server_streams_while_the_client_does_not_read_and_sends(server: str, size: int, count: int) -> None:
    url = f"{server}/fast-writer?size={size}&count={count}&pause={PAUSE}"
    with websync.connect(url, compression=None, max_size=None, close_timeout=1) as ws:
        sender = _stream(ws, b"\xa5" * size, count)
        time.sleep(PAUSE)  # not calling recv: the worker reads, answers the server's ping
        for index in range(count):
            message = ws.recv(timeout=RECV_TIMEOUT)
            assert len(message) == size, f"message {index}"
        assert ws.recv(timeout=RECV_TIMEOUT) == f"done {count}"
        sender.join(RECV_TIMEOUT)
        assert not sender.is_alive()
