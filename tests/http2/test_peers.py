"""WebSockets over HTTP/2 (RFC 8441) against real servers: hypercorn and Node's http2 with npm ws,
each over h2c (prior knowledge) and TLS (ALPN h2)."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest
from peers.h2 import Peer, echo_concurrently

import websync
import websync.http2
from websync import ConnectionClosed, InvalidStatus

pytestmark = pytest.mark.timeout(30)

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20]


def dials(caplog: pytest.LogCaptureFixture) -> int:
    return sum("over HTTP/2" in record.getMessage() and "dialing" in record.getMessage() for record in caplog.records)


def test_echo_text_and_binary_from_0_bytes_to_16_mib(peer: Peer) -> None:
    with websync.connect(peer.url + "/echo", http2=True, **peer.options(max_size=None)) as ws:
        assert ws.status == 200
        for size in SIZES:
            text = "é" * (size // 2) + "a" * (size % 2)
            ws.send(text)
            assert ws.recv(timeout=20) == text
            data = os.urandom(size)
            ws.send(data)
            assert ws.recv(timeout=20) == data


def test_ping_pong(peer: Peer) -> None:
    with websync.connect(peer.url + "/echo", http2=True, **peer.options()) as ws:
        assert ws.ping(b"over h2").wait(5)


def test_close_code_chosen_by_the_server(peer: Peer) -> None:
    with (
        websync.connect(peer.url + "/close/4001", http2=True, **peer.options()) as ws,
        pytest.raises(ConnectionClosed) as closed,
    ):
        ws.recv(timeout=5)
    assert (closed.value.code, closed.value.reason) == (4001, "bye")


def test_close_code_chosen_by_the_client_is_quick(peer: Peer) -> None:
    ws = websync.connect(peer.url + "/echo", http2=True, **peer.options())
    started = time.monotonic()
    ws.close(4000, "done")
    assert ws.close_code == 4000
    assert time.monotonic() - started < 1.0  # no wait for an END_STREAM that hypercorn never sends


def test_subprotocol(peer: Peer) -> None:
    with websync.connect(peer.url + "/echo", http2=True, **peer.options(subprotocols=["chat", "other"])) as ws:
        assert ws.subprotocol == "chat"


@pytest.mark.parametrize("compression", ["deflate", None])
def test_compression_negotiated_or_not(peer: Peer, compression: str | None) -> None:
    with websync.connect(peer.url + "/echo", http2=True, **peer.options(compression=compression)) as ws:
        assert ws.extensions == (["permessage-deflate"] if compression else [])
        ws.send("squeeze " * 1000)
        assert ws.recv(timeout=5) == "squeeze " * 1000


def test_refusal_raises_invalid_status_with_body(peer: Peer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        websync.connect(peer.url + "/reject", http2=True, **peer.options())
    assert refused.value.status == 403
    assert refused.value.body == b"go away"


def test_twenty_websockets_on_one_connection(peer: Peer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "websync.trace")
    with websync.http2.connect_session(peer.url, ssl=peer.ssl, trace=True) as session:
        sockets = [websync.connect(f"{peer.url}/echo", session=session, **peer.options()) for _ in range(20)]
        assert session.streams == 20
        assert echo_concurrently(sockets, rounds=5, step=3000) == []
        for ws in sockets:
            ws.close()
        assert dials(caplog) == 1
    assert session.streams == 0


def test_closing_one_websocket_leaves_the_others_running(peer: Peer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "websync.trace")
    with websync.http2.connect_session(peer.url, ssl=peer.ssl, trace=True) as session:
        first = websync.connect(f"{peer.url}/echo", session=session, **peer.options())
        second = websync.connect(f"{peer.url}/echo", session=session, **peer.options())
        first.close()
        assert first.close_code == 1000
        second.send("still here")
        assert second.recv(timeout=5) == "still here"
        third = websync.connect(f"{peer.url}/echo", session=session, **peer.options())
        third.send("new")
        assert third.recv(timeout=5) == "new"
        assert session.streams == 2
        second.close()
        third.close()
        assert dials(caplog) == 1


def test_worker_on_a_session(peer: Peer) -> None:
    received: list[str] = []
    done = threading.Event()

    class Greeter(websync.Handler):
        def connect(self) -> str:
            return f"{peer.url}/echo"

        def handle_connect(self, response: websync.Response) -> websync.Text:
            received.append(str(response.status))
            return websync.Text("hello from a worker")

        def handle_frame(self, frame: websync.Text | websync.Binary) -> websync.Stop:
            received.append(str(frame.data))
            done.set()
            return websync.Stop()

    with websync.http2.connect_session(peer.url, ssl=peer.ssl) as session:
        other = websync.connect(f"{peer.url}/echo", session=session, **peer.options())
        worker = websync.start(Greeter(), session=session, **peer.options())
        assert done.wait(5)
        worker.join(5)
        assert received == ["200", "hello from a worker"]
        other.send("unaffected")
        assert other.recv(timeout=5) == "unaffected"
        other.close()


def test_trace_shows_the_http2_layer(peer: Peer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "websync.trace")
    with websync.connect(peer.url + "/echo", http2=True, **peer.options(trace=True, max_size=None)) as ws:
        ws.send(os.urandom(3 << 20))
        ws.recv(timeout=10)
    messages = "\n".join(record.getMessage() for record in caplog.records)
    assert "h2 SETTINGS from the server" in messages and "ENABLE_CONNECT_PROTOCOL': 1" in messages
    assert "h2 stream 1: CONNECT /echo" in messages
    assert "h2 stream 1: status 200" in messages
    assert "h2 stream 1: WINDOW_UPDATE" in messages


def test_a_websocket_not_read_does_not_stall_the_others(peer: Peer) -> None:
    with websync.http2.connect_session(peer.url, ssl=peer.ssl) as session:
        idle = websync.connect(f"{peer.url}/echo", session=session, **peer.options(compression=None))
        busy = websync.connect(f"{peer.url}/echo", session=session, **peer.options())
        flood = [os.urandom(1 << 20) for _ in range(8)]  # far more than the 1 MiB stream window
        for message in flood:
            idle.send(message)
        for round_ in range(20):
            busy.send(f"round {round_}")
            assert busy.recv(timeout=5) == f"round {round_}"
        assert [idle.recv(timeout=10) for _ in flood] == flood
        idle.close()
        busy.close()
