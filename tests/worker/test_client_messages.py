"""Integration tests of ``websync.connect()`` against a real ``websockets`` server: data messages,
fragmentation, ping/pong, timeouts, concurrent senders, max_size and compression."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter

import pytest

import websync
from websync import Binary, Ping, Pong, Text

pytestmark = [pytest.mark.timeout(20), pytest.mark.usefixtures("no_thread_leaks")]

MiB = 2**20
SIZES = [0, 1, 125, 126, 65535, 65536, MiB - 1, MiB, 16 * MiB]


def _text(size: int) -> str:
    return ("websync é€ 🙂 " * (size // 10 + 1)).encode()[:size].decode(errors="ignore")


def _recv_text(ws: websync.ClientConnection, timeout: float) -> str:
    message = ws.recv(timeout=timeout)
    assert isinstance(message, str)
    return message


@pytest.mark.parametrize("size", SIZES)
def test_binary_round_trip(echo_server, size):
    payload = os.urandom(size)
    with websync.connect(echo_server.url, max_size=None, compression=None) as ws:
        ws.send(payload)
        assert ws.recv(timeout=10) == payload


@pytest.mark.parametrize("size", SIZES)
def test_text_round_trip(echo_server, size):
    message = _text(size)
    with websync.connect(echo_server.url, max_size=None) as ws:
        ws.send(message)
        received = ws.recv(timeout=10)
    assert isinstance(received, str)
    assert received == message


def test_types_are_kept(echo_server):
    with websync.connect(echo_server.url) as ws:
        ws.send("text")
        ws.send(b"bytes")
        ws.send(bytearray(b"array"))
        ws.send(memoryview(b"view"))
        assert [ws.recv(timeout=5) for _ in range(4)] == ["text", b"bytes", b"array", b"view"]


def test_recv_frame_returns_frame_values(echo_server):
    with websync.connect(echo_server.url) as ws:
        ws.send("a")
        ws.send(b"b")
        assert ws.recv_frame(timeout=5) == Text("a")
        assert ws.recv_frame(timeout=5) == Binary(b"b")


def test_big_message_with_larger_max_size(echo_server):
    payload = os.urandom(4 * MiB)
    with websync.connect(echo_server.url, max_size=4 * MiB) as ws:
        ws.send(payload)
        assert ws.recv(timeout=10) == payload


@pytest.mark.parametrize("compression", ["deflate", None])
@pytest.mark.parametrize("fragment_size", [1, 7, 1000, 65536])
def test_fragmented_send(echo_server, compression, fragment_size):
    size = min(fragment_size * 2000, 100_000)
    text = _text(size)
    data = os.urandom(size)
    with websync.connect(echo_server.url, compression=compression) as ws:
        ws.send(text, fragment_size=fragment_size)
        ws.send(data, fragment_size=fragment_size)
        ws.send("short", fragment_size=fragment_size)
        assert ws.recv(timeout=10) == text
        assert ws.recv(timeout=10) == data
        assert ws.recv(timeout=10) == "short"


def test_fragment_size_must_be_positive(echo_server):
    with websync.connect(echo_server.url) as ws:
        with pytest.raises(ValueError):
            ws.send("some text", fragment_size=0)
        ws.send("still open")
        assert ws.recv(timeout=5) == "still open"


def test_fragmented_messages_from_server(websockets_server):
    # websockets fragments a message sent as an iterable: each item is one frame.
    server = websockets_server(
        send=[{"fragments": ["é" * 3, "", "ab", "€"]}, {"hex_fragments": ["00ff", "01", ""]}, "whole"]
    )
    with websync.connect(server.url, compression=None) as ws:
        assert ws.recv(timeout=5) == "ééé" + "ab€"
        assert ws.recv(timeout=5) == b"\x00\xff\x01"
        assert ws.recv(timeout=5) == "whole"


@pytest.mark.parametrize("data", [b"", b"x", b"ping me", bytes(range(125))])
def test_ping_is_answered(echo_server, data):
    with websync.connect(echo_server.url) as ws:
        pong = ws.ping(data)
        assert isinstance(pong, threading.Event)
        assert pong.wait(5)
        # the pong is also visible to recv_frame, and recv skips it
        assert ws.recv_frame(timeout=5) == Pong(data)


def test_recv_skips_pongs(echo_server):
    with websync.connect(echo_server.url) as ws:
        assert ws.ping(b"1").wait(5)
        ws.send("after the pong")
        assert ws.recv(timeout=5) == "after the pong"


def test_several_pings_each_get_their_pong(echo_server):
    with websync.connect(echo_server.url) as ws:
        events = [ws.ping(str(i).encode()) for i in range(10)]
        assert all(event.wait(5) for event in events)


def test_ping_payload_over_125_bytes_is_refused(echo_server):
    with websync.connect(echo_server.url) as ws:
        with pytest.raises(ValueError):
            ws.ping(bytes(126))
        ws.send("usable")
        assert ws.recv(timeout=5) == "usable"


def test_server_ping_is_answered_with_same_payload(raw_server):
    def script(peer):
        peer.handshake()
        peer.send_frame(0x9, b"hello?")
        pong = peer.read_frame()
        peer.send_frame(0x8, b"\x03\xe8")
        peer.expect_close()
        return pong

    server = raw_server(script)
    with websync.connect(server.url) as ws:
        assert ws.recv_frame(timeout=5) == Ping(b"hello?")
        with pytest.raises(websync.ConnectionClosedOK):
            ws.recv(timeout=5)
    pong = server.result()
    assert (pong.opcode, pong.payload, pong.masked) == (0xA, b"hello?", True)


def test_frames_of_one_read_keep_their_order(raw_server):
    # One write of messages with a ping among them, then a burst of messages: recv() takes them
    # in order whether they come straight from its own read or through the worker's inbox.
    def script(peer):
        peer.handshake()
        frames = [peer.encode_frame(0x1, b"one"), peer.encode_frame(0x2, b"two"), peer.encode_frame(0x9, b"?")]
        peer.send(b"".join(frames + [peer.encode_frame(0x1, b"three")]))
        pong = peer.read_frame()
        peer.send(b"".join(peer.encode_frame(0x2, b"%d" % n) for n in range(100)))
        peer.expect_close(echo=True)
        return pong

    server = raw_server(script)
    with websync.connect(server.url) as ws:
        assert [ws.recv(timeout=5) for _ in range(3)] == ["one", b"two", "three"]
        assert [ws.recv(timeout=5) for _ in range(100)] == [b"%d" % n for n in range(100)]
    pong = server.result()
    assert (pong.opcode, pong.payload) == (0xA, b"?")


def test_recv_timeout_then_connection_still_usable(echo_server):
    with websync.connect(echo_server.url) as ws:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.05)
        with pytest.raises(TimeoutError):
            ws.recv_frame(timeout=0)
        ws.send("after the timeout")
        assert ws.recv(timeout=5) == "after the timeout"
        assert ws.close_code is None


def test_recv_timeout_is_not_a_connection_error(echo_server):
    with websync.connect(echo_server.url) as ws:
        with pytest.raises(TimeoutError) as info:
            ws.recv(timeout=0.01)
        assert not isinstance(info.value, websync.ConnectionClosed)


@pytest.mark.parametrize("fragment_size", [None, 100])
def test_send_from_several_threads(echo_server, fragment_size):
    threads_count, per_thread = 8, 50
    barrier = threading.Barrier(threads_count)
    errors = []
    with websync.connect(echo_server.url) as ws:

        def sender(index: int) -> None:
            try:
                barrier.wait(5)
                for n in range(per_thread):
                    ws.send(f"{index}:{n}:" + "x" * (n * 37 % 1000), fragment_size=fragment_size)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=sender, args=(i,)) for i in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert not errors
        received = [_recv_text(ws, 5) for _ in range(threads_count * per_thread)]
    expected = [f"{i}:{n}:" + "x" * (n * 37 % 1000) for i in range(threads_count) for n in range(per_thread)]
    assert Counter(received) == Counter(expected)
    # each thread's messages arrive in the order it sent them
    for index in range(threads_count):
        mine = [int(m.split(":")[1]) for m in received if m.startswith(f"{index}:")]
        assert mine == list(range(per_thread))


def test_default_max_size_refuses_2_mib(echo_server):
    with websync.connect(echo_server.url) as ws:
        ws.send(bytes(2 * MiB))
        with pytest.raises(websync.ConnectionClosedError) as info:
            ws.recv(timeout=10)
        assert info.value.code == 1009
        assert ws.close_code == 1009


def test_default_max_size_accepts_exactly_1_mib(echo_server):
    payload = os.urandom(MiB)
    with websync.connect(echo_server.url, compression=None) as ws:
        ws.send(payload)
        assert ws.recv(timeout=10) == payload


def test_max_size_refusal_sends_1009_on_the_wire(raw_server):
    def script(peer):
        peer.handshake()
        peer.send_frame(0x2, bytes(MiB + 1))
        return peer.expect_close(echo=True)

    server = raw_server(script)
    with websync.connect(server.url) as ws, pytest.raises(websync.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert info.value.code == 1009
    assert server.result().close_code == 1009


def test_compression_negotiated_by_default(echo_server):
    with websync.connect(echo_server.url + "/request") as ws:
        request = json.loads(ws.recv(timeout=5))
        assert ws.extensions == ["permessage-deflate"]
        ws.send("z" * 100_000)
        assert ws.recv(timeout=5) == "z" * 100_000
    offered = [v for k, v in request["headers"] if k.lower() == "sec-websocket-extensions"]
    assert offered and offered[0].startswith("permessage-deflate")


def test_compression_off_on_client(echo_server):
    with websync.connect(echo_server.url + "/request", compression=None) as ws:
        request = json.loads(ws.recv(timeout=5))
        assert ws.extensions == []
        ws.send("z" * 100_000)
        assert ws.recv(timeout=5) == "z" * 100_000
    assert not [k for k, _ in request["headers"] if k.lower() == "sec-websocket-extensions"]


def test_compression_off_on_server(websockets_server):
    server = websockets_server(compression=False)
    with websync.connect(server.url) as ws:
        assert ws.extensions == []
        ws.send(b"\x00" * 10_000)
        assert ws.recv(timeout=5) == b"\x00" * 10_000


def test_compression_actually_compresses(echo_server):
    with websync.connect(echo_server.url) as ws:
        ws.send("a" * 1_000_000)
        assert ws.recv(timeout=5) == "a" * 1_000_000
        stats = websync.statistics(ws.worker)
    assert stats["bytes_out"] < 100_000
    assert stats["bytes_in"] < 100_000


def test_unsupported_compression_is_refused(echo_server):
    with pytest.raises(ValueError):
        websync.connect(echo_server.url, compression="brotli")


def test_unknown_option_is_refused(echo_server):
    with pytest.raises(TypeError):
        websync.connect(echo_server.url, max_sise=10)


def test_duplicate_ping_payloads_each_get_their_pong(raw_server):
    # the peer answers only once both pings are in, so the second ping is sent before any pong
    def script(peer):
        peer.handshake()
        pings = [peer.read_frame(), peer.read_frame()]
        peer.send_frame(0xA, pings[0].payload)
        peer.send_frame(0xA, pings[1].payload)
        peer.send_frame(0x1, b"after the pongs")
        peer.expect_close(echo=True)
        return pings

    server = raw_server(script)
    with websync.connect(server.url) as ws:
        first, second = ws.ping(b"same"), ws.ping(b"same")
        assert ws.recv(timeout=5) == "after the pongs"
        assert second.is_set()
        assert first.is_set()
    assert [(ping.opcode, ping.payload) for ping in server.result()] == [(0x9, b"same")] * 2


def _recv_in_thread(ws, timeout: float | None, join: float) -> tuple[bool, object]:
    """Call ws.recv(timeout) in a thread; (finished within ``join`` seconds, result or exception).

    A call still running after ``join`` seconds is ended by ``ws.close()`` (its outcome is then
    what that close made recv() raise)."""
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(ws.recv(timeout=timeout))
        except Exception as exc:  # noqa: BLE001
            outcome.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(join)
    finished = not thread.is_alive()
    if not finished:
        ws.close()
        thread.join(5)
    return finished, outcome[0] if outcome else None


def test_recv_timeout_holds_while_control_frames_arrive(echo_server):
    with websync.connect(echo_server.url, ping_interval=0.02, ping_timeout=5) as ws:
        finished, outcome = _recv_in_thread(ws, timeout=0.2, join=2)
        assert finished, "recv(timeout=0.2) still blocked after 2 s"
        assert isinstance(outcome, TimeoutError)


def test_keepalive_pings_are_answered(echo_server):
    with websync.connect(echo_server.url, ping_interval=0.02, ping_timeout=1) as ws:
        frame = ws.recv_frame(timeout=5)
        assert isinstance(frame, Pong) and len(frame.data) == 4
        ws.send("still here")
        assert ws.recv(timeout=5) == "still here"


def test_keepalive_detects_silent_peer(raw_server):
    def script(peer):
        peer.handshake()
        pings = []
        while True:  # never answer pings
            frame = peer.read_frame()
            if frame.opcode == 0x9:
                pings.append(frame)
            if frame.opcode == 0x8:
                return pings

    server = raw_server(script)
    start = time.monotonic()
    with (
        websync.connect(server.url, ping_interval=0.05, ping_timeout=0.2) as ws,
        pytest.raises(websync.ConnectionClosedError) as info,
    ):
        ws.recv()  # no timeout: only the keepalive can end this wait
    assert info.value.code == 1006
    assert time.monotonic() - start < 2


@pytest.mark.parametrize("timeout", [None, 10.0], ids=["blocked-in-recv-syscall", "polling"])
def test_close_wakes_a_thread_blocked_in_recv(echo_server, timeout):
    # Without a timeout, the reader waits inside the socket's recv() itself (plain TCP).
    ws = websync.connect(echo_server.url)
    finished, outcome = _recv_in_thread(ws, timeout=timeout, join=0.3)  # then ws.close()
    assert not finished, "recv() returned before anything was sent or closed"
    assert isinstance(outcome, websync.ConnectionClosedOK)
    assert outcome.code == 1000
