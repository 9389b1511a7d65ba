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
from peers.raw_client import RawClient
from peers.raw_server import OP_BINARY, PeerConnection
from peers.spawn import Spawned

import websync
from websync.core.server_handshake import Request

pytestmark = pytest.mark.timeout(120)

SERVER = Path(__file__).parent.parent / "peers" / "backpressure_server.py"
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


# -- a worker's outbox after a paused peer ---------------------------------------------------------

QUEUED = 8_000
QUEUED_SIZE = 4 * 1024


def test_a_workers_queued_frames_go_out_once_a_paused_server_reads_again(raw_server) -> None:
    # The server reads nothing for 2 s while 8,000 messages of 4 KiB are queued: once it reads,
    # every one arrives (684 did, and 7,316 stayed queued for good: after its backlog drained,
    # the worker waited for its socket to be readable with frames still in its outbox).
    def script(peer: PeerConnection) -> int:
        peer.handshake()
        time.sleep(2)
        return sum(1 for _ in range(QUEUED) if peer.read_frame().opcode == OP_BINARY)

    server = raw_server(script)

    class Pusher(websync.Handler):
        url = server.url

    worker = websync.start(Pusher(), compression=None, proxy=None)
    try:
        payload = b"\x01" * QUEUED_SIZE
        for _ in range(QUEUED):
            worker.send(payload)
        assert server.result(timeout=60) == QUEUED
        deadline = time.monotonic() + 5  # the last frame leaves the outbox once its write returned
        while worker.queued and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.queued == 0
    finally:
        worker.stop()


def test_a_server_connections_pushed_frames_go_out_once_a_paused_client_reads_again() -> None:
    # The same through the server's per-connection worker (what a broadcast relies on).
    class Pushed(websync.ServerHandler):
        def init(self, request: Request) -> None:
            assert self.worker is not None
            payload = b"\x02" * QUEUED_SIZE
            for _ in range(QUEUED):
                self.worker.send(payload)

    with websync.serve(Pushed) as server, RawClient("127.0.0.1", server.port, receive_buffer=64 * 1024) as client:
        time.sleep(2)
        client.sock.settimeout(30)
        assert sum(1 for _ in range(QUEUED) if client.read_frame().opcode == OP_BINARY) == QUEUED
