"""RFC 8441 fronts of an HTTP/1.1 WebSocket server: nghttpx and Apache httpd's mod_http2 (h2c)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from peers.h2 import Peer, echo_concurrently

import websync
import websync.http2
from websync import ConnectionClosed

pytestmark = pytest.mark.timeout(30)

STREAMS = {"nghttpx": 20, "apache": 6}
"""WebSockets at once on one connection; Apache answers about 6 concurrent streams at first."""


@pytest.fixture(params=["nghttpx", "apache"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_echo_ping_and_compression(h2_proxy: Callable[[str, str], Peer], kind: str) -> None:
    peer = h2_proxy(kind, "echo")
    with websync.connect(peer.url + "/", http2=True, **peer.options(max_size=None)) as ws:
        assert ws.status == 200
        assert ws.extensions == ["permessage-deflate"]  # negotiated end to end by the backend
        for size in (0, 125, 65536, 1 << 20):
            data = os.urandom(size)
            ws.send(data)
            assert ws.recv(timeout=20) == data
            ws.send("é" * (size // 2))
            assert ws.recv(timeout=20) == "é" * (size // 2)
        assert ws.ping(b"through the proxy").wait(5)
        ws.close(4000, "done")
    assert ws.close_code == 4000


def test_server_close_ends_the_stream_normally(h2_proxy: Callable[[str, str], Peer], kind: str) -> None:
    peer = h2_proxy(kind, "close")
    with websync.connect(peer.url + "/", http2=True, **peer.options()) as ws:
        ws.send("one")
        assert ws.recv(timeout=5) == "one"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert (closed.value.code, closed.value.reason) == (4001, "bye")


def test_several_websockets_on_one_connection(h2_proxy: Callable[[str, str], Peer], kind: str) -> None:
    peer = h2_proxy(kind, "echo")
    with websync.http2.connect_session(peer.url) as session:
        sockets = [websync.connect(peer.url + "/", session=session, **peer.options()) for _ in range(STREAMS[kind])]
        assert session.streams == STREAMS[kind]
        assert echo_concurrently(sockets, rounds=3, step=2000) == []
        sockets[0].close()
        sockets[1].send("still here")
        assert sockets[1].recv(timeout=5) == "still here"
        for ws in sockets[1:]:
            ws.close()
