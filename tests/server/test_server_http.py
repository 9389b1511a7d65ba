"""Issue 22, plain HTTP on the WebSocket port: ``process_request`` answers a health check (200) to
``urllib``, ``http.client``, and through nginx and HAProxy, while WebSocket upgrades go on; without
it a plain request still gets 426; slow and malformed plain requests are bounded like a handshake."""

from __future__ import annotations

import http.client
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from peers.spawn import Spawned
from websockets.sync.client import connect as ws_connect

import websync
from websync import Binary, HTTPResponse, ServerHandler, Text
from websync.core.server_handshake import Request

pytestmark = pytest.mark.timeout(60)

HANDSHAKE_TIMEOUT = 1.0


class Echo(ServerHandler):
    def handle_in(self, frame: Text | Binary) -> Any:
        return frame


def health(request: Request) -> HTTPResponse | tuple[int, list[tuple[str, str]], bytes] | None:
    if request.path == "/healthz":
        return HTTPResponse(200, {"X-Served-By": "websync"}, "ok")
    if request.path == "/teapot":
        return 418, [("X-Tuple", "yes")], b"short and stout"
    if request.path == "/crash":
        raise RuntimeError("process_request failed")
    return None


@pytest.fixture
def server() -> Iterator[websync.Server]:
    with websync.serve(Echo, process_request=health, handshake_timeout=HANDSHAKE_TIMEOUT, close_timeout=2) as running:
        yield running


def get(port: int, path: str) -> tuple[int, bytes, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read(), answer.headers
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read(), error.headers


def test_health_check_is_200_with_urllib(server: websync.Server) -> None:
    status, body, headers = get(server.port, "/healthz")
    assert (status, body) == (200, b"ok")
    assert headers["X-Served-By"] == "websync" and headers["Content-Length"] == "2"
    assert get(server.port, "/teapot")[:2] == (418, b"short and stout")


def test_health_check_with_http_client_http10_and_http11(server: websync.Server) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request("GET", "/healthz")
        answer = connection.getresponse()
        assert (answer.status, answer.read(), answer.getheader("Connection")) == (200, b"ok", "close")
    finally:
        connection.close()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:  # HTTP/1.0, as some checkers send
        sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        answer_bytes = b"".join(iter(lambda: sock.recv(4096), b""))
    assert answer_bytes.startswith(b"HTTP/1.1 200 OK\r\n") and answer_bytes.endswith(b"\r\n\r\nok")


def test_other_requests_go_on_to_the_upgrade_or_426(server: websync.Server) -> None:
    with ws_connect(f"ws://127.0.0.1:{server.port}/chat") as ws:
        ws.send("still a websocket server")
        assert ws.recv(timeout=5) == "still a websocket server"
    status, _, headers = get(server.port, "/elsewhere")
    assert status == 426 and headers["Upgrade"] == "websocket"


def test_process_request_that_raises_is_500(server: websync.Server) -> None:
    assert get(server.port, "/crash")[0] == 500
    assert get(server.port, "/healthz")[0] == 200  # the server goes on


def test_without_process_request_a_plain_request_is_426() -> None:
    with websync.serve(Echo) as plain:
        assert get(plain.port, "/healthz")[0] == 426


def test_slow_and_malformed_plain_requests_are_bounded(server: websync.Server) -> None:
    slow = socket.create_connection(("127.0.0.1", server.port))
    malformed = socket.create_connection(("127.0.0.1", server.port))
    try:
        started = time.monotonic()
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        malformed.sendall(b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n")
        malformed.settimeout(5)
        assert malformed.recv(4096).startswith(b"HTTP/1.1 400 ")
        assert get(server.port, "/healthz")[0] == 200  # served meanwhile
        slow.settimeout(HANDSHAKE_TIMEOUT + 3)
        assert slow.recv(4096) == b""  # dropped at the handshake timeout
        assert time.monotonic() - started < HANDSHAKE_TIMEOUT + 1.5
    finally:
        slow.close()
        malformed.close()


@pytest.mark.parametrize("kind", ["nginx", "haproxy"])
def test_health_check_through_a_reverse_proxy(
    request: pytest.FixtureRequest, server: websync.Server, kind: str
) -> None:
    start: Callable[..., Spawned] = request.getfixturevalue(kind)
    front = start(server.port)
    assert get(front.port, "/healthz")[:2] == (200, b"ok")
    with ws_connect(f"ws://127.0.0.1:{front.port}/") as ws:
        ws.send(f"through {kind}")
        assert ws.recv(timeout=5) == f"through {kind}"
