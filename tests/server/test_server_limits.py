"""Server limits and policies with real clients: max_size, max_connections, handshake_timeout, origins,
the descriptor wall."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import websocket  # websocket-client
from websockets.exceptions import ConnectionClosedError as WebsocketsClosedError
from websockets.exceptions import InvalidStatus as WebsocketsInvalidStatus
from websockets.sync.client import connect as ws_connect
from websockets.typing import Origin

import websync
from websync import Binary, ServerHandler, Text

pytestmark = pytest.mark.timeout(30)


class Echo(ServerHandler):
    def handle_in(self, frame: Text | Binary) -> Text | Binary:
        return frame


def url(server: websync.Server) -> str:
    return f"ws://127.0.0.1:{server.port}/"


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


# -- max_size ------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["deflate", None])
def test_message_over_max_size_closes_with_1009(compression: str | None) -> None:
    with websync.serve(Echo, max_size=1000, close_timeout=2) as server:
        with ws_connect(url(server), compression=compression) as ws:
            ws.send(b"\x00" * 1000)
            assert ws.recv(timeout=5) == b"\x00" * 1000  # exactly max_size is fine
            ws.send(b"\x00" * 1001)
            with pytest.raises(WebsocketsClosedError) as caught:
                ws.recv(timeout=5)
        assert caught.value.rcvd is not None and caught.value.rcvd.code == 1009


def test_max_size_none_lifts_the_limit() -> None:
    payload = b"\x07" * (2**20 + 1)  # over the default of 1 MiB
    with websync.serve(Echo, max_size=None) as server, ws_connect(url(server), max_size=None) as ws:
        ws.send(payload)
        assert ws.recv(timeout=10) == payload


def test_default_max_size_is_one_mib() -> None:
    with websync.serve(Echo, close_timeout=2) as server, ws_connect(url(server), max_size=None) as ws:
        ws.send(b"\x00" * (2**20 + 1))
        with pytest.raises(WebsocketsClosedError) as caught:
            ws.recv(timeout=5)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1009


@pytest.mark.parametrize("compression", ["deflate", None])
def test_a_client_still_writing_an_oversize_message_reads_the_1009(compression: str | None) -> None:
    # 16 MiB against the default 1 MiB: the server refuses the frame from its header and closes
    # with 1009 while the client is still writing. The server reads on (discarding) until the
    # client's close: closing TCP earlier reset the client's write and lost the close frame
    # (websockets saw 1009 in 1 run of 5).
    with websync.serve(Echo) as server:
        for _ in range(5):
            started = time.monotonic()
            with (
                pytest.raises(WebsocketsClosedError) as caught,
                ws_connect(url(server), max_size=None, compression=compression) as ws,
            ):
                ws.send(os.urandom(16 * 2**20))
                ws.recv(timeout=5)
            assert caught.value.rcvd is not None and caught.value.rcvd.code == 1009
            assert time.monotonic() - started < 5  # the client's close ends the wait, not close_timeout


# -- max_connections -----------------------------------------------------------------------------


def test_max_connections_answers_503_and_frees_slots(stack: ExitStack) -> None:
    server = stack.enter_context(websync.serve(Echo, max_connections=2))
    first = stack.enter_context(ws_connect(url(server)))
    second = websocket.create_connection(url(server), timeout=5)
    stack.callback(second.close)
    with pytest.raises(WebsocketsInvalidStatus) as caught:
        ws_connect(url(server), open_timeout=5)
    assert caught.value.response.status_code == 503
    with pytest.raises(websocket.WebSocketBadStatusException) as bad:
        websocket.create_connection(url(server), timeout=5)
    assert bad.value.status_code == 503
    first.send("still fine")
    assert first.recv(timeout=5) == "still fine"
    first.close()
    deadline = time.monotonic() + 5
    while len(server.connections) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    with ws_connect(url(server)) as third:
        third.send("room again")
        assert third.recv(timeout=5) == "room again"


# -- handshake_timeout ---------------------------------------------------------------------------


def test_silent_client_is_dropped_after_handshake_timeout(stack: ExitStack) -> None:
    server = stack.enter_context(websync.serve(Echo, handshake_timeout=0.3))
    silent = stack.enter_context(socket.create_connection(("127.0.0.1", server.port)))
    silent.settimeout(5)
    started = time.monotonic()
    assert silent.recv(100) == b""  # closed without an answer
    assert 0.25 <= time.monotonic() - started < 3
    deadline = time.monotonic() + 5
    while server.connections and time.monotonic() < deadline:  # the worker exits right after the close
        time.sleep(0.01)
    assert server.connections == []


def test_slow_but_complete_request_within_the_timeout_is_served(stack: ExitStack) -> None:
    server = stack.enter_context(websync.serve(Echo, handshake_timeout=2))
    client = stack.enter_context(socket.create_connection(("127.0.0.1", server.port)))
    client.settimeout(5)
    request = (
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    for start in range(0, len(request), 40):
        client.sendall(request[start : start + 40])
        time.sleep(0.05)
    assert client.recv(4096).startswith(b"HTTP/1.1 101 ")


def test_plain_http_request_gets_426(stack: ExitStack) -> None:
    server = stack.enter_context(websync.serve(Echo))
    client = stack.enter_context(socket.create_connection(("127.0.0.1", server.port)))
    client.settimeout(5)
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while chunk := client.recv(4096):
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")


# -- origins -------------------------------------------------------------------------------------


def test_origins_are_checked() -> None:
    with websync.serve(Echo, origins=["https://app.example"]) as server:
        with ws_connect(url(server), origin=Origin("https://app.example")) as ws:
            ws.send("hi")
            assert ws.recv(timeout=5) == "hi"
        with pytest.raises(WebsocketsInvalidStatus) as caught:
            ws_connect(url(server), origin=Origin("https://evil.example"))
        assert caught.value.response.status_code == 403
        with pytest.raises(websocket.WebSocketBadStatusException) as bad:
            websocket.create_connection(url(server), origin="https://evil.example", timeout=5)
        assert bad.value.status_code == 403
        with pytest.raises(WebsocketsInvalidStatus):
            ws_connect(url(server))  # no Origin header at all


def test_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        websync.serve(Echo, max_sise=10)


# -- the descriptor wall -------------------------------------------------------------------------

AT_THE_WALL = """
import base64, gc, os, resource, socket, sys
import websync

class Echo(websync.ServerHandler):
    def handle_in(self, frame):
        return frame

server = websync.serve(Echo, handshake_timeout=30)
client = socket.socket()
client.settimeout(5)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
filler = []
try:
    while True:
        filler.append(os.open("/dev/null", os.O_RDONLY))
except OSError:
    pass
os.close(filler.pop())  # one descriptor free: accept() takes it, the worker's waker finds none
gc.disable()  # the socket must be closed by the worker, not by the garbage collector
client.connect(("127.0.0.1", server.port))
key = base64.b64encode(os.urandom(16)).decode()
client.sendall(f"GET / HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: {key}\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n".encode())
try:
    answer = client.recv(100)
except OSError as exc:
    answer = repr(exc).encode()
print("ANSWER", answer)
for fd in filler:
    os.close(fd)
server.stop(2)
"""


def test_a_connection_accepted_with_no_descriptor_left_for_its_worker_is_closed_at_once() -> None:
    """Its worker fails to make its waker (EMFILE) before the handshake: the accepted socket is
    closed as the worker ends (the client sees the end: EOF, or a reset for its unread request),
    not when the garbage collector finds it (the client would wait for an answer until then)."""
    done = subprocess.run(
        [sys.executable, "-c", AT_THE_WALL],
        capture_output=True,
        text=True,
        timeout=25,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ANSWER b''" in done.stdout or 'ANSWER b"ConnectionResetError' in done.stdout, done.stdout
    assert "Too many open files" in done.stderr  # the worker's end is logged
