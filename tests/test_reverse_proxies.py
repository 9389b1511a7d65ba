"""websync's client and server through the reverse proxies real deployments put in front of
them: nginx 1.22 and HAProxy 2.6, plain and with TLS (trustme certificates)."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from peers.spawn import Spawned

import websync
from websync import Binary, ServerHandler, Text

pytestmark = pytest.mark.timeout(60)


class Echo(ServerHandler):
    def handle_in(self, frame: Text | Binary) -> Any:
        return frame


@pytest.fixture(scope="module")
def server() -> Iterator[websync.Server]:
    with websync.serve(Echo, close_timeout=2) as running:
        yield running


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
@pytest.mark.parametrize("kind", ["nginx", "haproxy"])
def test_echo_through_a_reverse_proxy(
    request: pytest.FixtureRequest, server: websync.Server, client_ssl_context: ssl.SSLContext, kind: str, tls: bool
) -> None:
    start: Callable[..., Spawned] = request.getfixturevalue(kind)
    front = start(server.port, tls=tls)
    url = f"{'wss' if tls else 'ws'}://localhost:{front.port}/path?query=1"
    with websync.connect(url, ssl=client_ssl_context if tls else None, open_timeout=5, close_timeout=2) as ws:
        assert ws.status == 101
        messages: list[str | bytes] = ["text through the proxy", b"\x00binary" * 10_000]
        for message in messages:
            ws.send(message)
            assert ws.recv(timeout=5) == message
    assert ws.close_code == 1000
