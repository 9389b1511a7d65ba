"""Choosing HTTP/2: servers without extended CONNECT, http2="auto", ALPN, redirects and GOAWAY."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any

import pytest
from peers.h2 import Peer

import websync
import websync.http2
from websync import ExtendedConnectDisabled, InvalidHandshake

pytestmark = pytest.mark.timeout(30)


def test_server_without_extended_connect_is_refused(node_no_connect_h2c: Peer) -> None:
    peer = node_no_connect_h2c
    with pytest.raises(ExtendedConnectDisabled):
        websync.connect(peer.url + "/echo", http2=True, **peer.options())
    with pytest.raises(ExtendedConnectDisabled):
        websync.http2.connect_session(peer.url)


def test_server_without_extended_connect_is_refused_over_tls(node_no_connect_tls: Peer) -> None:
    peer = node_no_connect_tls
    with pytest.raises(ExtendedConnectDisabled):
        websync.connect(peer.url + "/echo", http2=True, **peer.options())


@pytest.mark.usefixtures("websync_trusts_the_test_ca")
def test_auto_falls_back_to_http11_without_extended_connect(
    node_no_connect_tls: Peer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "websync.trace")
    peer = node_no_connect_tls
    # ssl=None: websync's own contexts, which offer h2 and then http/1.1 alone
    with websync.connect(peer.url + "/echo", http2="auto", **peer.options(trace=True, ssl=None)) as ws:
        assert ws.status == 101
        ws.send("over HTTP/1.1")
        assert ws.recv(timeout=5) == "over HTTP/1.1"
    assert "falling back to HTTP/1.1" in caplog.text


def test_auto_with_a_context_that_offers_h2_cannot_fall_back(node_no_connect_tls: Peer) -> None:
    """The caller's context offers h2 and websync does not modify it: the server would choose h2
    again, so "auto" says why instead of falling back."""
    peer = node_no_connect_tls
    with pytest.raises(ExtendedConnectDisabled, match="offer only http/1.1"):
        websync.connect(peer.url + "/echo", http2="auto", **peer.options())


def test_auto_uses_h2_when_the_server_picks_it(hypercorn_tls: Peer) -> None:
    with websync.connect(hypercorn_tls.url + "/echo", http2="auto", **hypercorn_tls.options()) as ws:
        assert ws.status == 200


def test_auto_over_ws_uses_http11(hypercorn_h2c: Peer) -> None:
    with websync.connect(hypercorn_h2c.url + "/echo", http2="auto", **hypercorn_h2c.options()) as ws:
        assert ws.status == 101


def test_http11_only_server(websockets_server: Callable[..., Any], client_ssl_context: ssl.SSLContext) -> None:
    server = websockets_server(tls=True)
    url = f"wss://localhost:{server.port}/"
    with pytest.raises(InvalidHandshake, match="did not negotiate HTTP/2"):
        websync.connect(url, http2=True, ssl=client_ssl_context, open_timeout=5)
    with websync.connect(url, http2="auto", ssl=client_ssl_context, open_timeout=5) as ws:
        assert ws.status == 101


def test_redirect_is_followed_over_h2(hypercorn_h2c: Peer) -> None:
    with websync.connect(hypercorn_h2c.url + "/redirect", http2=True, **hypercorn_h2c.options()) as ws:
        assert ws.status == 200
        ws.send("redirected")
        assert ws.recv(timeout=5) == "redirected"


def test_session_refuses_another_origin(hypercorn_h2c: Peer, node_h2c: Peer) -> None:
    with (
        websync.http2.connect_session(hypercorn_h2c.url) as session,
        pytest.raises(InvalidHandshake, match="not on the HTTP/2 session's origin"),
    ):
        websync.connect(node_h2c.url + "/echo", session=session, open_timeout=5)


def test_goaway_keeps_open_streams_and_the_next_websocket_dials_again(
    node_h2c: Peer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "websync.trace")
    with websync.http2.connect_session(node_h2c.url, trace=True) as session:
        first = websync.connect(node_h2c.url + "/echo", session=session, **node_h2c.options())
        first.send("goaway")
        assert first.recv(timeout=5) == "goaway sent"
        first.send("after GOAWAY")
        assert first.recv(timeout=5) == "after GOAWAY"
        second = websync.connect(node_h2c.url + "/echo", session=session, **node_h2c.options())
        second.send("on a new connection")
        assert second.recv(timeout=5) == "on a new connection"
        first.close()
        second.close()
    assert "h2 GOAWAY from the server: error code 0" in caplog.text
    assert caplog.text.count("dialing") == 2


def test_closed_session_refuses_new_websockets(hypercorn_h2c: Peer) -> None:
    session = websync.http2.connect_session(hypercorn_h2c.url)
    session.close()
    assert session.closed
    with pytest.raises(InvalidHandshake, match="closed"):
        websync.connect(hypercorn_h2c.url + "/echo", session=session, open_timeout=5)


def test_closing_the_session_cuts_its_websockets(hypercorn_h2c: Peer) -> None:
    session = websync.http2.connect_session(hypercorn_h2c.url)
    ws = websync.connect(hypercorn_h2c.url + "/echo", session=session, **hypercorn_h2c.options())
    session.close()
    with pytest.raises(websync.ConnectionClosedError) as closed:
        ws.recv(timeout=5)
    assert closed.value.code == 1006
