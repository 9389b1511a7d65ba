"""Issue 22, broadcast: ``Server.broadcast`` to 200 clients (199 ``websockets`` clients reading, one
raw socket with a tiny receive buffer that stops reading) never blocks; the readers get every message
in order, and the slow one is handled by its ``overflow`` policy; with "drop_oldest" the newest
frames queued for it go out once it reads again."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from peers.raw_client import RawClient
from peers.raw_server import OP_CLOSE, OP_TEXT, Frame
from websockets.asyncio.client import connect as async_connect

import websync
from websync import Binary, ServerHandler, Text
from websync.server.connection_worker import ConnectionWorker

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

READERS = 199
MESSAGES = 500
SIZE = 256
MAX_QUEUE = 50


class Quiet(ServerHandler):
    def handle_in(self, frame: Text | Binary) -> Any:
        return frame


def message(index: int) -> str:
    return f"{index:06d}".ljust(SIZE, "x")


class Readers:
    """READERS asyncio clients in one thread, each reading MESSAGES messages."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ready = threading.Event()
        self.received: list[list[str]] = []
        self.finished_at: float | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="broadcast-readers")
        self.thread.start()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        connections = [
            await async_connect(self.url, compression=None, ping_interval=None, max_size=None) for _ in range(READERS)
        ]
        self.ready.set()

        async def read(ws: Any) -> list[str]:
            return [await ws.recv() for _ in range(MESSAGES)]

        try:
            self.received = await asyncio.wait_for(asyncio.gather(*(read(ws) for ws in connections)), 60)
            self.finished_at = time.monotonic()
        finally:
            await asyncio.gather(*(ws.close() for ws in connections), return_exceptions=True)


def read_until_quiet(client: RawClient) -> list[Frame]:
    """What the stalled peer gets once it reads again: frames until a close, a second of silence,
    or the end of the connection (a server whose close could not get through drops it after
    close_timeout: on a loaded machine that can happen before the stalled peer reads again)."""
    frames: list[Frame] = []
    client.sock.settimeout(1)
    try:
        while not frames or frames[-1].opcode != OP_CLOSE:
            frames.append(client.read_frame())
    except (TimeoutError, EOFError):
        pass
    return frames


@pytest.fixture(params=["drop_oldest", "drop_newest", "close"])
def overflow(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(overflow: str) -> Iterator[websync.Server]:
    with websync.serve(
        Quiet, compression=None, max_queue=MAX_QUEUE, overflow=overflow, close_timeout=10, ping_interval=None
    ) as running:
        yield running


def test_broadcast_to_200_with_one_stalled_reader(server: websync.Server, overflow: str) -> None:
    slow = RawClient("127.0.0.1", server.port, "/slow", receive_buffer=4096)
    try:
        readers = Readers(f"ws://127.0.0.1:{server.port}/")
        assert readers.ready.wait(30) and readers.error is None, readers.error
        deadline = time.monotonic() + 10
        while len(server.open_connections) < READERS + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(server.open_connections) == READERS + 1
        slow_port = slow.sock.getsockname()[1]
        slow_worker = next(
            w for w in server.open_connections if isinstance(w, ConnectionWorker) and w.remote_address[1] == slow_port
        )
        assert slow_worker.connection is not None
        # Loopback autotunes a send buffer up to 4 MiB, which would absorb the whole test; a small
        # fixed one makes the stalled peer's backlog reach the queue after a few frames.
        slow_worker.connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        started = time.monotonic()
        longest = 0.0
        for index in range(MESSAGES):
            before = time.monotonic()
            assert server.broadcast(message(index)) >= READERS
            longest = max(longest, time.monotonic() - before)
            if index % 50 == 49:
                time.sleep(0.01)  # a steady rate, not one burst
        broadcast_time = time.monotonic() - started
        readers.thread.join(60)
        assert readers.error is None, readers.error
        assert len(readers.received) == READERS
        expected = [message(index) for index in range(MESSAGES)]
        assert all(received == expected for received in readers.received)  # all, in order
        assert longest < 2, longest  # never blocked on the stalled one (which would be for good)
        assert readers.finished_at is not None and readers.finished_at - started < broadcast_time + 10
        others = [worker for worker in server.connections if worker is not slow_worker]
        assert websync.statistics(slow_worker)["dropped"] > 0  # (with "close" it may be gone already)
        assert not any(websync.statistics(worker)["dropped"] for worker in others)  # only the stalled one overflowed

        frames = read_until_quiet(slow)
        texts = [int(frame.payload[:6]) for frame in frames if frame.opcode == OP_TEXT]
        assert texts == sorted(texts) and texts[0] == 0 and len(texts) < MESSAGES
        if overflow == "drop_oldest":
            assert texts[-MAX_QUEUE:] == list(range(MESSAGES - MAX_QUEUE, MESSAGES))  # the newest went out
        elif overflow == "drop_newest":
            assert texts[-1] < MESSAGES - 1 and frames[-1].opcode == OP_TEXT
        else:  # closed with 1008: the close frame arrived, or the connection was dropped behind it
            assert frames[-1].opcode != OP_CLOSE or frames[-1].close_code == 1008
            assert slow_worker.join(15) and not slow_worker.is_alive()
    finally:
        slow.close()
