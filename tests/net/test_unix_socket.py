"""``unix_socket=`` and ``sock=``: WebSockets over a Unix domain socket (uvicorn ``--uds``) and
over a socket the caller connected, TLS included for wss://, from ``connect`` and ``start``."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peers.spawn import Spawned

import websync

pytestmark = pytest.mark.timeout(30)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def uvicorn_uds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The path of uvicorn's Unix socket, serving tests/peers/asgi_echo.py."""
    pytest.importorskip("uvicorn")
    folder = tmp_path_factory.mktemp("uvicorn")
    path = folder / "app.sock"
    argv = [sys.executable, "-m", "uvicorn", "tests.peers.asgi_echo:app", "--uds", str(path)]
    server = Spawned(argv, r"Uvicorn running on unix socket", folder / "uvicorn.log", cwd=REPO)
    yield path
    server.stop()


class Echo(websync.ServerHandler):
    def handle_in(self, frame: websync.Text | websync.Binary) -> websync.Text | websync.Binary:
        return frame


@pytest.fixture
def websync_server() -> Iterator[websync.Server]:
    with websync.serve(Echo, port=0) as server:
        yield server


def test_connect_over_uvicorn_unix_socket(uvicorn_uds, no_thread_leaks):
    with websync.connect("ws://localhost/echo", unix_socket=str(uvicorn_uds), subprotocols=["chat"]) as ws:
        assert ws.subprotocol == "chat"
        ws.send("over a unix socket")
        assert ws.recv(timeout=5) == "over a unix socket"
    assert ws.close_code == 1000


def test_start_over_uvicorn_unix_socket_and_reconnect(uvicorn_uds, spawn):
    """Each connection dials the Unix socket again: a worker reconnects the same way."""
    received: list[str | bytes] = []
    connected = threading.Semaphore(0)

    class Twice(websync.Handler):
        url = "ws://localhost/echo"

        def handle_connect(self, response: Any) -> websync.Text:
            return websync.Text(f"connection {len(received) + 1}")

        def handle_frame(self, frame: websync.Text | websync.Binary) -> websync.Close | websync.Stop:
            received.append(frame.data)
            connected.release()
            return websync.Stop("normal") if len(received) == 2 else websync.Close(1000, "again")

        def handle_disconnect(self, reason: Exception, attempt: int) -> websync.Reconnect:
            return websync.Reconnect(0.05)

    worker = spawn(Twice(), unix_socket=str(uvicorn_uds))
    assert connected.acquire(timeout=5) and connected.acquire(timeout=5)
    worker.join(5)
    assert received == ["connection 1", "connection 2"]


def test_a_missing_unix_socket_is_a_transport_error(tmp_path):
    with pytest.raises(websync.TransportError, match="unix socket"):
        websync.connect("ws://localhost/", unix_socket=str(tmp_path / "nobody.sock"))


def test_connect_over_a_connected_tcp_socket(websync_server, no_thread_leaks):
    sock = socket.create_connection(("127.0.0.1", websync_server.port))
    with websync.connect("ws://example.invalid/", sock=sock) as ws:  # the name is never resolved
        ws.send(b"over my socket")
        assert ws.recv(timeout=5) == b"over my socket"
    assert sock.fileno() == -1  # the connection owned it and closed it


def test_connect_over_a_socketpair(no_thread_leaks):
    """The other end of a socketpair, handed to a websync server connection's acceptor: any
    connected stream socket will do."""
    mine, theirs = socket.socketpair()
    with websync.serve(Echo, port=0) as server:
        relay = socket.create_connection(("127.0.0.1", server.port))
        pumps = [threading.Thread(target=_pump, args=pair, daemon=True) for pair in ((theirs, relay), (relay, theirs))]
        for pump in pumps:
            pump.start()
        with websync.connect("ws://localhost/", sock=mine) as ws:
            ws.send("through a socketpair")
            assert ws.recv(timeout=5) == "through a socketpair"
        for pump in pumps:
            pump.join(5)
    theirs.close()
    relay.close()


def _pump(source: socket.socket, target: socket.socket) -> None:
    """Copy bytes until EOF, then pass the EOF on."""
    try:
        while data := source.recv(65536):
            target.sendall(data)
        target.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def test_wss_over_a_given_socket_applies_tls(websockets_server, client_ssl_context, no_thread_leaks):
    server = websockets_server(tls=True)
    sock = socket.create_connection(("127.0.0.1", server.port))
    with websync.connect(f"wss://localhost:{server.port}/", sock=sock, ssl=client_ssl_context) as ws:
        ws.send("secret")
        assert ws.recv(timeout=5) == "secret"


def test_wss_over_a_given_socket_checks_the_url_s_host(websockets_server, client_ssl_context):
    server = websockets_server(tls=True)
    sock = socket.create_connection(("127.0.0.1", server.port))
    with pytest.raises(websync.TransportError, match="certificate verification"):
        websync.connect("wss://not-the-certificate.example/", sock=sock, ssl=client_ssl_context)
    assert sock.fileno() == -1


def test_start_takes_a_new_socket_from_handler_connect(websync_server, spawn):
    received: list[str | bytes] = []
    done = threading.Event()
    port = websync_server.port

    class Dialer(websync.Handler):
        def connect(self) -> Any:
            return "ws://localhost/", {}, {"sock": socket.create_connection(("127.0.0.1", port))}

        def handle_connect(self, response: Any) -> websync.Text:
            return websync.Text(f"hello {len(received) + 1}")

        def handle_frame(self, frame: websync.Text | websync.Binary) -> websync.Close | websync.Stop:
            received.append(frame.data)
            if len(received) == 2:
                done.set()
                return websync.Stop("normal")
            return websync.Close(1000, "again")

        def handle_disconnect(self, reason: Exception, attempt: int) -> websync.Reconnect:
            return websync.Reconnect(0.05)

    worker = spawn(Dialer())
    assert done.wait(5)
    worker.join(5)
    assert received == ["hello 1", "hello 2"]


def test_a_closed_socket_is_a_transport_error():
    sock = socket.socket()
    sock.close()
    with pytest.raises(websync.TransportError, match="closed"):
        websync.connect("ws://localhost/", sock=sock)


def test_unix_socket_and_http2_do_not_go_together(tmp_path):
    with pytest.raises(ValueError, match="HTTP/1.1"):
        websync.connect("ws://localhost/", unix_socket=str(tmp_path / "app.sock"), http2=True)
