"""A connection closed while other threads use it: no late call reaches the descriptor that
reuses its number, no private exception escapes, and a TLS connection stays TLS to the end."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Any

import pytest
from peers.raw_server import OP_TEXT, PeerConnection

import websync
from websync.net.transport import readable, wait_writable

pytestmark = pytest.mark.timeout(20)


def test_a_wait_on_a_socket_closed_by_another_thread_returns_it_as_ready() -> None:
    """The caller's next call on it then fails (EBADF), which reports the end; ``poll()`` itself
    would refuse the closed socket with a ValueError that no caller expects."""
    ours, theirs = socket.socketpair()
    ours.close()
    try:
        assert readable([ours], 0) == [ours]
        assert wait_writable(ours, 0)
    finally:
        theirs.close()


def test_a_killed_tls_connection_ends_as_lost_not_as_a_protocol_error(
    raw_server, server_ssl_context, client_ssl_context
) -> None:
    """``Worker.kill()`` shuts the socket down under the TLS layer, not through
    ``SSLSocket.shutdown``, which would drop it: the records still buffered would be parsed as
    frames (1002, "reserved bit set") instead of ending the connection as lost (1006)."""

    def script(peer: PeerConnection) -> None:
        peer.handshake()
        for _ in range(50):
            peer.send_frame(OP_TEXT, b"hello")
        peer.wait_stop()

    server = raw_server(script, ssl_context=server_ssl_context)
    ws = websync.connect(server.url, ssl=client_ssl_context, proxy=None, max_unread=1, close_timeout=1)
    assert ws.recv(timeout=5) == "hello"
    time.sleep(0.3)  # the other 49 wait in the socket: reading pauses at max_unread
    ws.worker.kill()
    with pytest.raises(websync.ConnectionClosedError) as info:
        while True:
            assert ws.recv(timeout=5) == "hello"
    assert info.value.code == 1006
    ws.close()


def test_a_tls_send_in_flight_while_the_connection_closes_never_reaches_a_reused_descriptor(
    raw_server, server_ssl_context, client_ssl_context, monkeypatch
) -> None:
    """OpenSSL writes to the number the socket had when it was wrapped: the close waits for the
    sender to leave, else the next socket opened gets that number and the sender's record.

    A reader waits in ``recv()`` and a sender is inside ``SSL_write`` (paused there, as the OS may
    preempt it), when ``close()`` gives up on the close handshake and the socket is shut down.
    """
    shut_down = threading.Event()

    def script(peer: PeerConnection) -> None:
        peer.handshake()
        if peer.read_eof():
            shut_down.set()
        peer.wait_stop()

    server = raw_server(script, ssl_context=server_ssl_context)
    ws = websync.connect(server.url, ssl=client_ssl_context, proxy=None, ping_interval=None, close_timeout=0.3)
    in_write, proceed = threading.Event(), threading.Event()
    numbers: list[int] = []
    real_send = ssl.SSLSocket.send

    def send_after_a_pause(self: ssl.SSLSocket, data: Any, flags: int = 0) -> int:
        if threading.current_thread() is not sender:
            return real_send(self, data, flags)
        tls = self._sslobj  # type: ignore[attr-defined]  # what SSLSocket.send calls, then the GIL goes
        numbers.append(self.fileno())
        in_write.set()
        proceed.wait(10)
        return int(tls.write(data))

    monkeypatch.setattr(ssl.SSLSocket, "send", send_after_a_pause)
    reader = threading.Thread(target=_until_the_end, args=(ws.recv,))
    reader.start()
    time.sleep(0.1)
    sender = threading.Thread(target=_until_the_end, args=(ws.send, b"secret" * 100))
    sender.start()
    assert in_write.wait(5)
    closer = threading.Thread(target=ws.close)
    closer.start()
    assert shut_down.wait(5)
    time.sleep(1.2)  # the close waits for the sender and the reader to leave the socket
    pairs = _pairs_until_one_takes(numbers[0])  # only if the connection's number was freed
    try:
        proceed.set()
        for thread in (sender, reader, closer):
            thread.join(5)
        for end in (end for pair in pairs for end in pair):
            end.setblocking(False)
            with pytest.raises(BlockingIOError):
                end.recv(65536)
    finally:
        for end in (end for pair in pairs for end in pair):
            end.close()


def _pairs_until_one_takes(number: int, most: int = 64) -> list[tuple[socket.socket, socket.socket]]:
    """Socket pairs, made until one end has descriptor ``number`` (new ones take the lowest free)."""
    pairs: list[tuple[socket.socket, socket.socket]] = []
    while len(pairs) < most:
        pairs.append(socket.socketpair())
        if number in (pairs[-1][0].fileno(), pairs[-1][1].fileno()):
            break
    return pairs


def _until_the_end(call: Any, *args: Any) -> None:
    try:
        call(*args)
    except websync.ConnectionClosed:
        pass  # the close ends the call: the test looks at where the bytes went
