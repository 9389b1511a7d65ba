"""The close handshake through nghttpx as an RFC 8441 front: the server's close is answered, and the
answer reaches the HTTP/1.1 server behind nghttpx (the Autobahn cases run through it depend on it).

Not Apache's mod_http2: it holds bytes that the backend sends right behind its 101 for about five
seconds and never ends the stream once the backend closed, so this script would only time out."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from peers.h2 import Peer
from peers.raw_server import OP_CLOSE, OP_TEXT, PeerConnection, RawServer, close_payload

import websync
from websync import ConnectionClosed

pytestmark = pytest.mark.timeout(60)

ROUNDS = 20
"""Connections per front: without the fix, nghttpx lost the reply in about half of them."""


def close_first(peer: PeerConnection) -> int | None:
    """Send close 1000 right after the handshake and return the code of the client's answer."""
    peer.handshake()
    peer.send_frame(OP_CLOSE, close_payload(1000, "server first"))
    code: int | None = peer.expect_close().close_code
    return code


def test_answer_to_the_servers_close_reaches_the_backend(
    h2_proxy: Callable[..., Peer], raw_server: Callable[..., RawServer]
) -> None:
    backend = raw_server(close_first)
    peer = h2_proxy("nghttpx", "close-first", backend=backend.port)
    for _ in range(ROUNDS):
        with (
            websync.connect(peer.url + "/", http2=True, **peer.options()) as ws,
            pytest.raises(ConnectionClosed) as closed,
        ):
            ws.recv(timeout=5)
        assert (closed.value.code, closed.value.reason) == (1000, "server first")
        assert backend.result(timeout=5) == 1000


def fail_on_reserved_bits(peer: PeerConnection) -> int | None:
    """Send a frame with RSV2 set (the client must fail with 1002) and return the close code it sent."""
    peer.handshake()
    peer.send_frame(OP_TEXT, b"bad", rsv=2)
    code: int | None = peer.expect_close().close_code
    return code


def test_failing_close_reaches_the_backend(h2_proxy: Callable[..., Peer], raw_server: Callable[..., RawServer]) -> None:
    backend = raw_server(fail_on_reserved_bits)
    peer = h2_proxy("nghttpx", "fail", backend=backend.port)
    for _ in range(ROUNDS):
        with (
            websync.connect(peer.url + "/", http2=True, **peer.options()) as ws,
            pytest.raises(ConnectionClosed) as closed,
        ):
            ws.recv(timeout=5)
        assert closed.value.code == 1002
        assert backend.result(timeout=5) == 1002
