"""Slow and hostile servers (scripted raw peers): a handshake trickled byte by byte, endless headers,
a frame header announcing 2^63-1 bytes, ping floods, and servers that never finish the close
handshake. Each must end in bounded time, with bounded memory (tracemalloc's peak while the client
deals with the peer) and a clear error.

Already covered elsewhere, not repeated here: a handshake dripped past open_timeout
(test_client_handshake.py::test_open_timeout_bounds_slow_drip), the error of an endless response
head (::test_endless_response_head_is_bounded), a 2^63 length (most significant bit set) and a
2 MiB frame header (test_client_hostile.py), a peer that never answers our close or never closes
TCP after answering it (test_client_close.py).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any, Self

import pytest
from peers.raw_server import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    PeerConnection,
    accept_key,
)

import websync

pytestmark = [pytest.mark.timeout(20), pytest.mark.usefixtures("no_thread_leaks")]

frame = PeerConnection.encode_frame
MiB = 2**20


class Peak:
    """tracemalloc's peak of Python allocations (all threads) while the ``with`` block runs."""

    def __enter__(self) -> Self:
        tracemalloc.start()
        tracemalloc.reset_peak()
        self.start, _ = tracemalloc.get_traced_memory()
        return self

    def __exit__(self, *exc_info: object) -> None:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        self.bytes = peak - self.start


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def trickle(peer: PeerConnection, data: bytes, delay: float) -> None:
    """Send ``data`` one byte at a time, each in its own TCP segment."""
    peer.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for byte in data:
        if peer.server.stopping.wait(delay):
            return
        peer.send(bytes([byte]))


# -- the opening handshake ------------------------------------------------------------------------


def test_handshake_trickled_byte_by_byte_succeeds_within_open_timeout(raw_server):
    def script(peer):
        request = peer.read_request()
        head = (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(request.headers['sec-websocket-key'])}\r\n\r\n"
        ).encode()
        trickle(peer, head + frame(OP_TEXT, "trickled ✓".encode()), 0.01)
        return peer.expect_close(echo=True)

    server = raw_server(script)
    ws, elapsed = timed(lambda: websync.connect(server.url, open_timeout=5, compression=None))
    with ws:
        assert elapsed > 1.0, "the peer took ~1.3 s to send the head"
        assert ws.recv(timeout=5) == "trickled ✓"
    assert server.result().close_code == 1000


def test_handshake_trickled_past_open_timeout_is_an_open_timeout(raw_server):
    # 50 ms per byte: the head needs ~6.5 s, open_timeout is 0.5 s
    def script(peer):
        request = peer.read_request()
        trickle(peer, f"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: {request.path}".encode(), 0.05)

    server = raw_server(script)
    start = time.monotonic()
    with pytest.raises(websync.OpenTimeout) as info:
        websync.connect(server.url, open_timeout=0.5)
    assert 0.45 <= time.monotonic() - start < 1.5
    assert isinstance(info.value, TimeoutError)


def endless(peer: PeerConnection, chunk: bytes) -> None:
    """Send ``chunk`` forever (until the client hangs up or the test ends)."""
    try:
        while not peer.server.stopping.is_set():
            peer.send(chunk)
    except OSError:
        pass


@pytest.mark.parametrize(
    "chunk",
    [b"X-Filler: " + b"a" * 1000 + b"\r\n", b"a" * 4096, b"X: y\r\n"],
    ids=["long headers", "one endless line", "tiny headers"],
)
def test_endless_headers_are_refused_at_the_limit_with_bounded_memory(raw_server, chunk):
    def script(peer):
        peer.read_request()
        peer.send(b"HTTP/1.1 101 Switching Protocols\r\n")
        endless(peer, chunk)

    server = raw_server(script)
    start = time.monotonic()
    with Peak() as peak, pytest.raises(websync.InvalidHandshake, match="longer than|more than") as info:
        websync.connect(server.url, open_timeout=10)
    assert not isinstance(info.value, websync.OpenTimeout), "refused at the limit, not at the deadline"
    assert time.monotonic() - start < 5
    # the head is bounded to 64 KiB; the parser's buffer and one recv may at most double that
    assert peak.bytes < 1 * MiB, f"{peak.bytes} bytes allocated"


# -- frames ---------------------------------------------------------------------------------------

LARGEST = 2**63 - 1


@pytest.mark.parametrize(
    "header, options, code",
    [
        (bytes([0x82, 127]) + struct.pack("!Q", LARGEST), {}, 1009),
        (bytes([0x82, 127]) + struct.pack("!Q", LARGEST), {"max_size": 2**40}, 1009),
        (bytes([0x02, 127]) + struct.pack("!Q", LARGEST), {}, 1009),  # first fragment of a message
        (bytes([0x89, 127]) + struct.pack("!Q", LARGEST), {}, 1002),  # a ping cannot be that long
    ],
    ids=["binary", "binary-huge-max_size", "fragment", "ping"],
)
def test_frame_announcing_2_63_bytes_is_refused_at_once(raw_server, header, options, code):
    def script(peer):
        peer.handshake()
        peer.send(header + b"x" * 1000)  # and a little of the "payload"
        return peer.expect_close()

    server = raw_server(script)
    ws = websync.connect(server.url, compression=None, **options)
    start = time.monotonic()
    with Peak() as peak, pytest.raises(websync.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert time.monotonic() - start < 1, "refused on the header, not after waiting for the payload"
    assert info.value.code == code
    assert server.result().close_code == code
    assert peak.bytes < 256 * 1024
    ws.close()


def test_frame_announcing_2_63_bytes_without_max_size_buffers_only_what_came(raw_server):
    # max_size=None means "no limit": the client waits for the payload, but allocates only for
    # the bytes that actually arrive, never for the announced length
    def script(peer):
        peer.handshake()
        peer.send(bytes([0x82, 127]) + struct.pack("!Q", LARGEST) + b"x" * 100_000)
        return peer.expect_close()

    server = raw_server(script)
    ws = websync.connect(server.url, compression=None, max_size=None, close_timeout=1)
    with Peak() as peak, pytest.raises(TimeoutError):
        ws.recv(timeout=0.5)
    assert peak.bytes < 2 * MiB
    ws.close()
    assert server.result().close_code == 1000


PING_FLOOD = 20_000
FLOOD = frame(OP_PING, b"p" * 16) * PING_FLOOD + frame(OP_TEXT, b"after the flood")


def test_ping_flood_is_answered_with_bounded_memory_and_the_client_stays_responsive(raw_server):
    def script(peer):
        peer.handshake()
        peer.send(FLOOD)
        pongs = 0
        while True:
            received = peer.read_frame()
            if received.opcode == OP_PONG:
                assert received.payload == b"p" * 16
                pongs += 1
            elif received.opcode == OP_TEXT:
                peer.send_frame(OP_TEXT, b"echo " + received.payload)
            elif received.opcode == OP_CLOSE:
                peer.send_frame(OP_CLOSE, received.payload[:2])
                return pongs

    server = raw_server(script)
    with websync.connect(server.url, compression=None) as ws:
        with Peak() as peak:
            message, elapsed = timed(lambda: ws.recv(timeout=10))
        assert message == "after the flood"
        assert elapsed < 5
        ws.send("still there?")
        assert ws.recv(timeout=5) == "echo still there?"
    pongs = server.result()
    assert pongs == PING_FLOOD, "every ping is answered (none is dropped while the peer reads)"
    # 20,000 pings are 440 KB on the wire; recv() consumes the queued ping frames as it goes
    assert peak.bytes < 4 * MiB, f"{peak.bytes} bytes allocated"


def never_reading_flooder(peer: PeerConnection) -> None:
    """Complete the handshake, then send 125-byte pings forever and never read (no socket timeout)."""
    peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: pongs back up soon
    peer.sock.settimeout(None)
    peer.handshake()
    endless(peer, frame(OP_PING, b"p" * 125) * 4096)


def test_ping_flood_from_a_peer_that_never_reads_does_not_wedge_close(raw_server):
    # the pongs fill the socket buffers and the worker blocks writing one; close() must still end
    # within its bounds (2 * close_timeout + 1) and leave no thread behind
    server = raw_server(never_reading_flooder)
    ws = websync.connect(server.url, compression=None, close_timeout=0.5)
    wait_blocked_writing(ws.worker)
    _, elapsed = timed(ws.close)
    assert elapsed < 2 * 0.5 + 1.5
    assert ws.close_code == 1006
    ws.worker.join(2)
    assert not ws.worker.is_alive(), "the worker is stuck writing a pong to a peer that never reads"


def test_ping_flood_from_a_peer_that_never_reads_does_not_wedge_a_worker_stop(raw_server):
    server = raw_server(never_reading_flooder)
    worker = websync.start(Handler(server.url), compression=None, close_timeout=0.5)
    wait_blocked_writing(worker)
    _, elapsed = timed(lambda: worker.stop(timeout=2))
    assert elapsed < 3
    assert worker.exit_reason is not None  # stopped, or killed past the timeout
    assert worker._thread is not None
    worker._thread.join(2)
    assert not worker._thread.is_alive(), "the worker's thread is stuck writing to a peer that never reads"


class Handler(websync.Handler):
    def __init__(self, url: str) -> None:
        self.url = url


def wait_blocked_writing(worker: websync.Worker, timeout: float = 5) -> None:
    """Wait until the worker has been writing the same pongs for a while (its writes block)."""
    deadline = time.monotonic() + timeout
    last, still = -1, 0
    while still < 5:
        assert time.monotonic() < deadline, "the worker never blocked"
        time.sleep(0.05)
        sent = websync.statistics(worker)["bytes_out"]
        still = still + 1 if sent == last and sent > 0 else 0
        last = sent


# -- the close handshake --------------------------------------------------------------------------


def test_peer_that_chatters_instead_of_closing_is_cut_at_close_timeout(raw_server):
    # our close frame is read, but the peer keeps sending messages and never sends its close
    def script(peer):
        peer.handshake()
        stop = threading.Event()

        def chatter():
            try:
                while not stop.is_set() and not peer.server.stopping.is_set():
                    peer.send_frame(OP_TEXT, b"chatter " * 100)
                    time.sleep(0.001)
            except OSError:
                pass

        thread = threading.Thread(target=chatter, name="raw-peer-chatter", daemon=True)
        thread.start()
        try:
            return peer.expect_close()
        finally:
            stop.set()
            thread.join(5)

    server = raw_server(script)
    ws = websync.connect(server.url, compression=None, close_timeout=0.4)
    message = ws.recv(timeout=5)
    assert isinstance(message, str) and message.startswith("chatter")
    _, elapsed = timed(ws.close)
    assert elapsed < 2
    assert ws.close_code == 1006
    assert not ws.worker.is_alive()
    assert server.result().close_code == 1000


def test_worker_stop_bounded_when_the_peer_never_completes_the_close(raw_server):
    def script(peer):
        peer.handshake()
        close = peer.expect_close()
        peer.send_frame(OP_PING, b"still here")  # answers with a ping, never with a close
        peer.read_eof()
        return close

    server = raw_server(script)
    connected = threading.Event()

    class Quiet(websync.Handler):
        url = server.url

        def handle_connect(self, response: websync.Response) -> None:
            connected.set()

    worker = websync.start(Quiet(), close_timeout=0.3)
    assert connected.wait(5)
    _, elapsed = timed(lambda: worker.stop(timeout=5))
    assert elapsed < 2
    assert not worker.is_alive()
    assert server.result().close_code == 1000
