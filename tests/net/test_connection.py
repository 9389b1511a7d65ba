"""How a Connection treats its socket's blocking mode (websync.net.connection), on real sockets.

A worker reads and writes with MSG_DONTWAIT only and leaves the socket's mode alone (switching it
is an ``ioctl`` that lets go of the GIL on every start); a blocking reader switches it at its first
read, after which each blocking read is one ``recv``; a socket that comes with a timeout is made
non-blocking, as the timeout would make even a MSG_DONTWAIT call wait for data first.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from peers.websockets_server import ServerProcess

import websync
from websync.core.frames import Binary
from websync.core.handshake import Response
from websync.core.headers import Headers
from websync.core.protocol import Protocol, Role
from websync.core.uri import parse_uri
from websync.net.connection import Connection
from websync.net.tracing import Tracer

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def _connection(sock: socket.socket) -> Connection:
    return Connection(
        sock,
        Protocol(Role.CLIENT),
        parse_uri("ws://127.0.0.1/"),
        Response(101, "Switching Protocols", Headers()),
        None,
        Tracer("test"),
    )


def test_a_non_blocking_socket_is_left_as_it_is_until_a_blocking_read(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    ours.setblocking(False)
    connection = _connection(ours)
    assert ours.gettimeout() == 0.0
    assert connection.receive() == []  # nothing there: a non-blocking read returns at once
    theirs.sendall(b"\x82\x01x")
    assert connection.receive(block=True) == [Binary(b"x")]
    assert ours.gettimeout() is None  # from now on a blocking read is one recv
    threading.Timer(0.2, theirs.sendall, [b"\x82\x01y"]).start()
    assert connection.receive(block=True) == [Binary(b"y")]  # waited for it


def test_a_socket_with_a_timeout_never_waits_in_a_non_blocking_read(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    ours.settimeout(5)
    connection = _connection(ours)
    started = time.monotonic()
    assert connection.receive() == []
    assert time.monotonic() - started < 1  # a timeout left on the socket would poll for 5 s first


def test_a_blocking_socket_stays_blocking(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    ours.setblocking(True)
    connection = _connection(ours)
    assert connection.receive() == []  # MSG_DONTWAIT
    theirs.sendall(b"\x82\x01z")
    assert connection.receive(block=True) == [Binary(b"z")]
    assert ours.gettimeout() is None


def test_a_worker_leaves_its_socket_non_blocking(echo_server: ServerProcess) -> None:
    modes: list[float | None] = []
    done = threading.Event()

    class Handler(websync.Handler):
        url = echo_server.url

        def handle_connect(self, response: websync.Response) -> websync.Binary:
            return websync.Binary(b"ping")

        def handle_frame(self, frame: websync.Text | websync.Binary) -> websync.Stop:
            modes.append(worker.connection.sock.gettimeout() if worker.connection else -1.0)
            done.set()
            return websync.Stop("normal")

    worker = websync.start(Handler(), compression=None)
    assert done.wait(10)
    worker.stop()
    assert modes == [0.0]


def test_a_blocking_clients_reads_block_on_the_socket(echo_server: ServerProcess) -> None:
    with websync.connect(echo_server.url, compression=None) as ws:
        ws.send(b"x")
        assert ws.recv(timeout=None) == b"x"
        assert ws._connection.sock.gettimeout() is None


@pytest.mark.parametrize("attempt", range(20))
def test_the_first_blocking_read_races_a_sender(echo_server: ServerProcess, attempt: int) -> None:
    """A caller's first recv() switches the socket to blocking while another thread writes to it:
    no write blocks or fails, every echo arrives in order."""
    count = 200
    with websync.connect(echo_server.url, compression=None) as ws:

        def send_all() -> None:
            for i in range(count):
                ws.send(f"{i}")

        sender = threading.Thread(target=send_all)
        sender.start()
        received = [ws.recv(timeout=None) for _ in range(count)]
        sender.join(10)
        assert not sender.is_alive()
        assert received == [f"{i}" for i in range(count)]
