"""Issue 21's production behaviour, each produced for real against a raw server on loopback:
keepalive that never cries wolf, a bounded receive buffer for ``connect()``, and closes that say why.
"""

from __future__ import annotations

import os
import queue
import socket
import ssl
import struct
import threading
import time
from typing import Any

import pytest
from peers.raw_server import OP_BINARY, PeerConnection

import websync

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("no_thread_leaks")]

MIB = 1024 * 1024


# -- keepalive ---------------------------------------------------------------------------------


def test_a_slow_large_message_is_proof_of_life(raw_server):
    """16 MiB over ~5 s from a peer that never reads (so never answers a ping): ping_timeout=1
    never fires, because the message's bytes keep arriving."""
    size, rate = 16 * MIB, 16 * MIB / 5  # bytes per second

    def script(peer: PeerConnection) -> float:
        peer.handshake()
        data = peer.encode_frame(OP_BINARY, bytes(size))
        start = time.monotonic()
        for offset in range(0, len(data), 64 * 1024):
            peer.send(data[offset : offset + 64 * 1024])
            time.sleep(max(start + (offset + 64 * 1024) / rate - time.monotonic(), 0))
        elapsed = time.monotonic() - start
        peer.expect_close(echo=True)
        return elapsed

    server = raw_server(script)
    with websync.connect(server.url, ping_interval=0.3, ping_timeout=1, max_size=None) as ws:
        message = ws.recv(timeout=20)
        assert len(message) == size
    assert ws.close_code == 1000
    assert server.result(timeout=20) >= 4.5


# -- a bounded receive buffer ------------------------------------------------------------------

COUNT, MESSAGE = 400, 64 * 1024


def flood(peer: PeerConnection, written: list[int], blocked: threading.Event) -> None:
    """Send COUNT numbered messages on a non-blocking socket, counting those fully written; ``blocked``
    is set once the socket refused bytes for half a second (the client stopped reading)."""
    peer.handshake()
    peer.sock.setblocking(False)
    for index in range(COUNT):
        data = memoryview(peer.encode_frame(OP_BINARY, struct.pack("!I", index) + bytes(MESSAGE - 4)))
        stalled_since = None
        while data:
            try:
                data = data[peer.sock.send(data) :]
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 0.5:
                    blocked.set()
                time.sleep(0.01)
        written.append(index)
    peer.sock.setblocking(True)
    peer.expect_close(echo=True)


def index_of(message: str | bytes) -> int:
    assert isinstance(message, bytes)
    index: int = struct.unpack("!I", message[:4])[0]
    return index


def test_max_unread_stops_reading_and_loses_nothing(raw_server):
    written: list[int] = []
    blocked = threading.Event()
    server = raw_server(lambda peer: flood(peer, written, blocked))
    with websync.connect(server.url, max_unread=16, compression=None) as ws:
        assert blocked.wait(10), "the server's writes never blocked"
        time.sleep(0.5)  # the caller keeps sleeping
        unread = ws._inbox.frames.qsize()
        # One read may complete several messages past the bound: at most its buffer's worth (1 MiB).
        assert unread <= 16 + MIB // MESSAGE, unread
        assert len(written) < COUNT, "every message was written: nothing pushed back"
        print(f"held {unread} messages ({unread * MESSAGE // 1024} KiB); the server wrote {len(written)}/{COUNT}")
        received = [index_of(ws.recv(timeout=10)) for _ in range(COUNT)]
    assert received == list(range(COUNT))
    assert ws.close_code == 1000


def test_without_max_unread_everything_is_read(raw_server):
    written: list[int] = []
    blocked = threading.Event()
    server = raw_server(lambda peer: flood(peer, written, blocked))
    with websync.connect(server.url, max_unread=None, compression=None) as ws:
        deadline = time.monotonic() + 10
        while ws._inbox.frames.qsize() < COUNT - 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ws._inbox.frames.qsize() >= COUNT - 1  # the first may be the caller's own read: none here
        assert [index_of(ws.recv(timeout=10)) for _ in range(COUNT)] == list(range(COUNT))


def test_keepalive_pongs_a_caller_never_reads_neither_pause_reads_nor_stall_the_close(echo_server):
    """A caller that only sends leaves its keepalive's pongs in the inbox: they are not messages,
    so they never pause the reads. Before, 16 of them paused the socket's reads for good: the
    keepalive was suspended and ``close()`` waited out close_timeout (10 s) for a close frame
    nobody read, then reported 1006."""
    with websync.connect(echo_server.url, ping_interval=0.002, ping_timeout=5, compression=None) as ws:
        deadline = time.monotonic() + 10
        while ws.worker.stats.frames_in < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ws.worker.stats.frames_in >= 40, "the keepalive's pongs did not arrive"
        ws.send("still read")
        assert ws.recv(timeout=5) == "still read"
        started = time.monotonic()
    assert ws.close_code == 1000
    assert time.monotonic() - started < 5


def test_a_close_reads_through_reads_paused_by_unread_messages(websockets_server):
    """100 messages nobody reads pause the reads at max_unread; the close handshake reads on
    past them to the peer's close frame (before: close_timeout, then 1006)."""
    server = websockets_server(send=[{"zeros": 1000}] * 100, compression=False)
    with websync.connect(server.url, max_unread=16, compression=None) as ws:
        deadline = time.monotonic() + 10
        while not ws.worker.reading_paused and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ws.worker.reading_paused
        started = time.monotonic()
    assert ws.close_code == 1000
    assert time.monotonic() - started < 5


def test_a_close_through_paused_reads_drops_what_the_peer_still_sends(raw_server):
    """The close reads on through paused reads to the peer's close frame; the messages it meets
    past max_unread are dropped, not queued for a caller that stopped reading (the flood's 400
    would be 25 MiB here, and a peer could send for the whole close_timeout)."""
    written: list[int] = []
    blocked = threading.Event()
    server = raw_server(lambda peer: flood(peer, written, blocked))
    with websync.connect(server.url, max_unread=16, compression=None) as ws:
        assert blocked.wait(10), "the server's writes never blocked"
    assert ws.close_code == 1000
    assert len(written) == COUNT  # the close read the rest of the flood
    unread = ws._inbox.frames.qsize()  # the messages kept, and the end's mark
    assert unread <= 16 + MIB // MESSAGE + 1, unread


# -- closes that say why -----------------------------------------------------------------------


def reset(peer: PeerConnection) -> None:
    peer.handshake()
    peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.sock.close()


def fin(peer: PeerConnection) -> None:
    peer.handshake()
    peer.sock.shutdown(socket.SHUT_WR)
    peer.wait_stop()


def silent(peer: PeerConnection) -> None:
    peer.handshake()
    peer.wait_stop()


def tls_garbage(peer: PeerConnection) -> None:
    peer.handshake()
    with socket.socket(fileno=os.dup(peer.sock.fileno())) as raw:  # under TLS: not a record
        raw.sendall(b"\x17\x03\x03\x00\x10 this is not TLS")
    peer.wait_stop()


CAUSES: dict[str, tuple[Any, dict[str, Any], str, type[BaseException] | None]] = {
    "RST": (reset, {}, "connection reset by peer", ConnectionResetError),
    "FIN": (fin, {}, "connection closed without a close frame", None),
    "black hole": (
        silent,
        {"ping_interval": 0.2, "ping_timeout": 0.3},
        "keepalive: no pong within 0.3 s",
        TimeoutError,
    ),
    "close unanswered": (silent, {"close_timeout": 0.3}, "close handshake timed out after 0.3 s", TimeoutError),
    "TLS garbage": (tls_garbage, {}, "TLS error: ", ssl.SSLError),
}


def check(closed: BaseException, reason: str, cause: type[BaseException] | None) -> None:
    assert type(closed) is websync.ConnectionClosedError
    assert closed.code == 1006
    assert closed.reason.startswith(reason) if reason.endswith(" ") else closed.reason == reason, closed.reason
    assert (closed.__cause__ is None) if cause is None else isinstance(closed.__cause__, cause), closed.__cause__


def open_server(raw_server, which, server_ssl_context, client_ssl_context):
    script, options, _, _ = CAUSES[which]
    tls = which == "TLS garbage"
    server = raw_server(script, ssl_context=server_ssl_context if tls else None)
    url = server.url.replace("ws://", "wss://") if tls else server.url
    return url, {**options, **({"ssl": client_ssl_context} if tls else {})}


@pytest.mark.parametrize("which", list(CAUSES))
def test_recv_says_why(which, raw_server, server_ssl_context, client_ssl_context):
    url, options = open_server(raw_server, which, server_ssl_context, client_ssl_context)
    _, _, reason, cause = CAUSES[which]
    ws = websync.connect(url, **options)
    if which == "close unanswered":
        ws.close()
    with pytest.raises(websync.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    check(info.value, reason, cause)
    ws.close()


@pytest.mark.parametrize("which", list(CAUSES))
def test_handle_disconnect_says_why(which, raw_server, server_ssl_context, client_ssl_context):
    url, options = open_server(raw_server, which, server_ssl_context, client_ssl_context)
    _, _, reason, cause = CAUSES[which]
    reasons: queue.SimpleQueue[Exception] = queue.SimpleQueue()

    class Recorder(websync.Handler):
        def handle_connect(self, response: websync.Response) -> Any:
            return websync.Close(1000, "") if which == "close unanswered" else None

        def handle_disconnect(self, reason: Exception, attempt: int) -> websync.Stop:
            reasons.put(reason)
            return websync.Stop()

    Recorder.url = url
    worker = websync.start(Recorder(), **options)
    check(reasons.get(timeout=5), reason, cause)
    worker.join(5)
