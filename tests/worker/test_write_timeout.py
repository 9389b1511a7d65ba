"""``write_timeout``: a write to a peer that stops reading fails the connection (1006, cause
``TimeoutError``) instead of blocking forever: ``connect().send()`` and a worker's writes."""

from __future__ import annotations

import threading
import time

import pytest

import websync
from websync.net.options import ConnectOptions

pytestmark = pytest.mark.timeout(30)

BIG = 16 * 1024 * 1024
"""More than loopback's socket buffers hold: the write blocks once they are full."""


def never_reads(peer):
    """Answer the upgrade, then read nothing until the test ends."""
    peer.handshake()
    peer.wait_stop()


def assert_write_timed_out(error: BaseException, timeout: float) -> None:
    assert isinstance(error, websync.ConnectionClosedError), repr(error)
    assert error.code == 1006
    assert isinstance(error.__cause__, TimeoutError), repr(error.__cause__)
    assert f"write timed out after {timeout:g} s" in error.reason, error.reason


def test_send_to_a_peer_that_stops_reading_fails_the_connection(raw_server, no_thread_leaks):
    server = raw_server(never_reads)
    ws = websync.connect(server.url, compression=None, write_timeout=1, close_timeout=1)
    start = time.monotonic()
    with pytest.raises(websync.ConnectionClosedError) as info:
        ws.send(bytes(BIG))
    elapsed = time.monotonic() - start
    print(f"\nsend() of {BIG >> 20} MiB to a peer that never reads failed after {elapsed:.2f} s")
    assert_write_timed_out(info.value, 1)
    assert 1 <= elapsed < 5
    with pytest.raises(websync.ConnectionClosedError) as later:  # the connection is over
        ws.recv(timeout=5)
    assert_write_timed_out(later.value, 1)
    ws.close()
    assert ws.close_code == 1006


def test_worker_write_to_a_peer_that_stops_reading_fails_the_connection(raw_server, spawn):
    server = raw_server(never_reads)
    lost: list[tuple[Exception, float]] = []
    connected = threading.Event()
    done = threading.Event()

    class Sender(websync.Handler):
        url = server.url

        def handle_connect(self, response: object) -> None:
            connected.set()

        def handle_disconnect(self, reason: Exception, attempt: int) -> websync.Stop:
            lost.append((reason, time.monotonic()))
            done.set()
            return websync.Stop("normal")

    worker = spawn(Sender(), compression=None, write_timeout=1)
    assert connected.wait(5)
    start = time.monotonic()
    worker.send(bytes(BIG))
    assert done.wait(10), "the worker never gave up on the write"
    reason, when = lost[0]
    elapsed = when - start
    print(f"\na worker's write of {BIG >> 20} MiB to a peer that never reads failed after {elapsed:.2f} s")
    assert_write_timed_out(reason, 1)
    assert 1 <= elapsed < 5
    worker.join(5)


def test_a_peer_that_reads_is_not_timed_out(no_thread_leaks):
    class Echo(websync.ServerHandler):
        def handle_in(self, frame: websync.Text | websync.Binary) -> websync.Text | websync.Binary:
            return frame

    with websync.serve(Echo, port=0, max_size=None) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        with websync.connect(url, compression=None, write_timeout=5, max_size=None) as ws:
            ws.send(bytes(BIG))
            assert len(ws.recv(timeout=20)) == BIG


def test_write_timeout_defaults_to_none():
    assert ConnectOptions().write_timeout is None
