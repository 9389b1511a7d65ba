"""Integration tests of the close handshake of ``websync.connect()``, both directions, and of
the threads it leaves behind (none)."""

from __future__ import annotations

import threading
import time

import pytest
from peers.raw_server import OP_CLOSE, OP_TEXT
from worker_peers import send_until_closed

import websync
from websync import Close

pytestmark = [pytest.mark.timeout(20), pytest.mark.usefixtures("no_thread_leaks")]


def test_client_close_normal(echo_server):
    ws = websync.connect(echo_server.url)
    ws.send("bye")
    assert ws.recv(timeout=5) == "bye"
    ws.close()
    assert ws.close_code == 1000
    assert ws.close_reason == ""
    with pytest.raises(websync.ConnectionClosedOK) as info:
        ws.recv(timeout=5)
    assert info.value.code == 1000
    assert info.value.initiated_by_peer is False
    assert not ws.worker.is_alive()


@pytest.mark.parametrize("code, reason", [(1000, "done"), (4000, "custom"), (4999, "é" * 30), (1001, "")])
def test_client_close_code_and_reason_round_trip(echo_server, code, reason):
    # the websockets server echoes the client's close frame
    ws = websync.connect(echo_server.url)
    ws.close(code, reason)
    assert (ws.close_code, ws.close_reason) == (code, reason)
    expected = websync.ConnectionClosedOK if code in (1000, 1001) else websync.ConnectionClosedError
    with pytest.raises(expected) as info:
        ws.recv(timeout=5)
    assert (info.value.code, info.value.reason) == (code, reason)
    with pytest.raises(expected):
        ws.send("too late")
    assert not ws.worker.is_alive()


@pytest.mark.parametrize("code, reason", [(1000, ""), (4000, "bye now")])
def test_client_close_frame_on_the_wire(raw_server, code, reason):
    def script(peer):
        peer.handshake()
        return peer.expect_close(echo=True)  # then the server closes TCP first (RFC 6455 7.1.1)

    server = raw_server(script)
    ws = websync.connect(server.url)
    start = time.monotonic()
    ws.close(code, reason)
    assert time.monotonic() - start < 2
    close = server.result()
    assert close.masked
    assert (close.close_code, close.close_reason) == (code, reason)
    assert ws.close_code == code


def test_client_does_not_wait_forever_for_server_tcp_close(raw_server):
    def script(peer):
        peer.handshake()
        frame = peer.expect_close(echo=True)
        peer.wait_stop()  # keep TCP open
        return frame

    server = raw_server(script)
    ws = websync.connect(server.url, close_timeout=0.3)
    start = time.monotonic()
    ws.close(4000, "x")
    assert time.monotonic() - start < 2
    assert not ws.worker.is_alive()
    assert ws.close_code == 4000


def test_close_is_idempotent(echo_server):
    ws = websync.connect(echo_server.url)
    ws.close(4000, "first")
    ws.close(4001, "second")
    assert (ws.close_code, ws.close_reason) == (4000, "first")


def test_context_manager_closes_with_1000(echo_server):
    with websync.connect(echo_server.url) as ws:
        worker = ws.worker
        assert worker.is_alive()
    assert ws.close_code == 1000
    assert not worker.is_alive()


def test_close_bounded_by_close_timeout_when_peer_never_answers(raw_server):
    def script(peer):
        peer.handshake()
        frame = peer.expect_close()  # and never answer it
        peer.wait_stop()
        return frame

    server = raw_server(script)
    ws = websync.connect(server.url, close_timeout=0.3)
    start = time.monotonic()
    ws.close()
    assert time.monotonic() - start < 2
    assert not ws.worker.is_alive()
    assert ws.close_code == 1006
    with pytest.raises(websync.ConnectionClosedError):
        ws.recv(timeout=1)


def test_a_peer_close_whose_answer_waits_behind_a_blocked_send_ends_within_close_timeout(raw_server):
    """The peer stops reading (a send() blocks: no write_timeout by default), then sends a message
    and its close, and keeps TCP open: the reply cannot go out, and the connection ends after
    close_timeout with the peer's code, not when the application happens to call close()."""

    def script(peer):
        peer.handshake()
        time.sleep(0.5)  # the client's sends fill the buffers meanwhile
        peer.send_frame(OP_TEXT, b"last words")
        peer.send_frame(OP_CLOSE, b"\x03\xe9going away")
        peer.wait_stop()

    server = raw_server(script)
    ws = websync.connect(server.url, close_timeout=1)
    sending = threading.Thread(target=send_until_closed, args=(ws,))
    sending.start()
    started = time.monotonic()
    assert ws.recv(timeout=5) == "last words"
    with pytest.raises(websync.ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert time.monotonic() - started < 4
    assert closed.value.code == 1001
    sending.join(5)
    assert not sending.is_alive() and not ws.worker.is_alive()


@pytest.mark.parametrize(
    "code, reason, expected",
    [
        (1000, "", websync.ConnectionClosedOK),
        (1001, "going away", websync.ConnectionClosedOK),
        (4001, "custom error", websync.ConnectionClosedError),
        (1011, "internal", websync.ConnectionClosedError),
    ],
)
def test_server_close(websockets_server, code, reason, expected):
    server = websockets_server(close_code=code, close_reason=reason, close_after=1)
    with websync.connect(server.url) as ws:
        ws.send("one")
        assert ws.recv(timeout=5) == "one"
        with pytest.raises(expected) as info:
            ws.recv(timeout=5)
        assert (info.value.code, info.value.reason) == (code, reason)
        assert info.value.initiated_by_peer is True
        assert (ws.close_code, ws.close_reason) == (code, reason)
        # later calls keep raising the same
        with pytest.raises(expected):
            ws.recv(timeout=1)
        with pytest.raises(expected):
            ws.send("too late")


def test_server_close_frame_visible_to_recv_frame(websockets_server):
    server = websockets_server(close_code=4001, close_reason="bye")
    with websync.connect(server.url) as ws:
        assert ws.recv_frame(timeout=5) == Close(4001, "bye")
        with pytest.raises(websync.ConnectionClosedError):
            ws.recv_frame(timeout=5)


def test_server_close_right_after_handshake(websockets_server):
    # the close frame may arrive in the same segment as the 101 response
    server = websockets_server(close_code=1001, close_reason="")
    with websync.connect(server.url) as ws:
        with pytest.raises(websync.ConnectionClosedOK) as info:
            ws.recv(timeout=5)
        assert info.value.code == 1001


def test_client_echoes_server_close_on_the_wire(raw_server):
    def script(peer):
        peer.handshake()
        peer.send_frame(0x8, b"\x0f\xa1" + b"server says bye")
        return peer.expect_close()

    server = raw_server(script)
    with websync.connect(server.url) as ws, pytest.raises(websync.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert (info.value.code, info.value.reason) == (4001, "server says bye")
    echoed = server.result()
    assert echoed.close_code == 4001 and echoed.masked


def test_server_close_without_code_is_a_normal_1005(raw_server):
    def script(peer):
        peer.handshake()
        peer.send_frame(0x8, b"")
        return peer.expect_close()

    server = raw_server(script)
    with websync.connect(server.url) as ws:
        with pytest.raises(websync.ConnectionClosedOK) as info:
            ws.recv(timeout=5)
        assert list(ws) == [], "iteration ends quietly"
    assert info.value.code == 1005
    assert server.result().payload == b"", "an empty close is answered by an empty close"


def test_tcp_drop_without_close_is_1006(raw_server):
    def script(peer):
        peer.handshake()
        peer.send_frame(0x1, b"last words")

    server = raw_server(script)
    with websync.connect(server.url) as ws:
        assert ws.recv(timeout=5) == "last words"
        with pytest.raises(websync.ConnectionClosedError) as info:
            ws.recv(timeout=5)
        assert info.value.code == 1006
        assert ws.close_code == 1006


def test_iteration_stops_at_normal_close(websockets_server):
    server = websockets_server(send=["a", {"hex": "62"}, "c"], close_code=1000, close_reason="done")
    with websync.connect(server.url) as ws:
        assert list(ws) == ["a", b"b", "c"]
        assert ws.close_code == 1000


def test_iteration_raises_at_error_close(websockets_server):
    server = websockets_server(send=["a"], close_code=4001, close_reason="broken")
    with websync.connect(server.url) as ws:
        received: list[str | bytes] = []
        with pytest.raises(websync.ConnectionClosedError) as info:
            received.extend(ws)  # keeps what arrived before the error
    assert received == ["a"]
    assert info.value.code == 4001


def test_no_worker_thread_left_after_many_connections(echo_server):
    before = set(threading.enumerate())
    workers = []
    for _ in range(20):
        with websync.connect(echo_server.url) as ws:
            ws.send("x")
            ws.recv(timeout=5)
            workers.append(ws.worker)
    assert not any(worker.is_alive() for worker in workers)
    assert set(threading.enumerate()) - before == set()


def test_worker_gone_after_server_close_without_client_close(websockets_server):
    server = websockets_server(close_code=1000, close_reason="")
    ws = websync.connect(server.url)
    with pytest.raises(websync.ConnectionClosedOK):
        ws.recv(timeout=5)
    assert ws.worker.join(5)
    assert not ws.worker.is_alive()


@pytest.mark.parametrize("code, reason", [(1005, ""), (1006, ""), (999, ""), (5000, ""), (1000, "é" * 62)])
def test_close_with_invalid_arguments_raises_in_caller(echo_server, code, reason):
    with websync.connect(echo_server.url) as ws:
        with pytest.raises(ValueError):
            ws.close(code, reason)
        ws.send("still open")
        assert ws.recv(timeout=5) == "still open"
    assert ws.close_code == 1000


def test_every_thread_waiting_in_recv_learns_of_the_close(echo_server):
    """Three readers wait (``recv()``, iteration, ``recv(timeout=...)``) when the connection
    closes: each gets the close, none waits for good (the end was one entry, taken by one reader)."""
    for _ in range(10):
        ws = websync.connect(echo_server.url, close_timeout=2)
        outcomes: list[str] = []
        calls = [ws.recv, lambda ws=ws: list(ws), lambda ws=ws: ws.recv(timeout=8)]
        readers = [threading.Thread(target=_record_the_end, args=(call, outcomes)) for call in calls]
        for reader in readers:
            reader.start()
        time.sleep(0.05)
        ws.close()
        for reader in readers:
            reader.join(5)
        assert not any(reader.is_alive() for reader in readers)
        assert sorted(outcomes) == ["closed", "closed", "returned"]  # iteration ends quietly


def _record_the_end(call, outcomes: list[str]) -> None:
    try:
        call()
        outcomes.append("returned")
    except websync.ConnectionClosedOK:
        outcomes.append("closed")
    except BaseException as exc:  # noqa: BLE001 - the test reports it
        outcomes.append(repr(exc))


def test_close_code_is_known_once_the_peer_closed_without_a_recv(raw_server):
    """The docstring's promise: the code once the connection is closed, not once recv() saw it."""

    def script(peer):
        peer.handshake()
        peer.send_frame(OP_CLOSE, b"\x03\xe9going away")
        peer.expect_close()

    server = raw_server(script)
    ws = websync.connect(server.url, close_timeout=2)
    assert ws.worker.join(5)
    assert (ws.close_code, ws.close_reason) == (1001, "going away")
    with pytest.raises(websync.ConnectionClosedOK):
        ws.recv(timeout=1)
