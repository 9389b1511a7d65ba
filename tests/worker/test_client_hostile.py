"""``websync.connect()`` against a scripted peer that completes the handshake, then breaks RFC 6455
(or RFC 7692): each violation must end in a clear exception, with the right close code sent on
the wire, quickly and without leaking threads."""

from __future__ import annotations

import os
import struct
import threading
import time
import zlib

import pytest
from peers.raw_server import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, PeerConnection
from worker_peers import send_until_closed

import websync

pytestmark = [pytest.mark.timeout(20), pytest.mark.usefixtures("no_thread_leaks")]

DEFLATE = [("Sec-WebSocket-Extensions", "permessage-deflate")]


def deflate(data: bytes) -> bytes:
    """A permessage-deflate payload: raw DEFLATE, sync-flushed, without the 00 00 ff ff tail."""
    compressor = zlib.compressobj(wbits=-15)
    payload = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert payload.endswith(b"\x00\x00\xff\xff")
    return payload[:-4]


def masked_frame(opcode: int, payload: bytes) -> bytes:
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + key + body


def run(raw_server, wire: bytes, *, before: bytes = b"", extensions=(), **options):
    """Handshake, send ``before`` (valid frames) then ``wire``; return what recv() saw and the
    close frame the client sent back."""

    def script(peer: PeerConnection):
        peer.handshake(list(extensions))
        peer.send(before + wire)
        return peer.expect_close()

    server = raw_server(script)
    received = []
    start = time.monotonic()
    with websync.connect(server.url, **options) as ws:
        with pytest.raises(websync.ConnectionClosed) as info:
            while True:
                received.append(ws.recv(timeout=5))
        close_code = ws.close_code
    assert time.monotonic() - start < 3, "a violation must not wait for close_timeout"
    sent = server.result()
    assert sent.masked
    assert info.value.code == close_code == sent.close_code, "recv(), close_code and the wire agree"
    assert isinstance(info.value, websync.ConnectionClosedError)
    return received, sent, info.value


frame = PeerConnection.encode_frame


@pytest.mark.parametrize("rsv", [1, 2, 4, 6, 7], ids=["rsv3", "rsv2", "rsv1", "rsv1+2", "all"])
def test_rsv_bits_without_extension(raw_server, rsv):
    _, sent, _error = run(raw_server, frame(OP_TEXT, b"hi", rsv=rsv), compression=None)
    assert sent.close_code == 1002


@pytest.mark.parametrize("rsv", [1, 2], ids=["rsv3", "rsv2"])
def test_rsv2_rsv3_with_deflate(raw_server, rsv):
    _, sent, _ = run(raw_server, frame(OP_TEXT, b"hi", rsv=rsv), extensions=DEFLATE)
    assert sent.close_code == 1002


def test_rsv1_on_control_frame_with_deflate(raw_server):
    _, sent, _ = run(raw_server, frame(OP_PING, b"", rsv=4), extensions=DEFLATE)
    assert sent.close_code == 1002


@pytest.mark.parametrize("opcode", [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_unknown_opcode(raw_server, opcode):
    received, sent, _ = run(raw_server, frame(opcode, b"x"), before=frame(OP_TEXT, b"valid first"))
    assert received == ["valid first"], "frames before the violation are delivered"
    assert sent.close_code == 1002


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
def test_oversized_control_frame(raw_server, opcode):
    payload = b"\x03\xe8" + b"r" * 124 if opcode == OP_CLOSE else b"p" * 126
    _, sent, _ = run(raw_server, frame(opcode, payload))
    assert sent.close_code == 1002


def test_control_frame_of_125_bytes_is_fine(raw_server):
    def script(peer):
        peer.handshake()
        peer.send_frame(OP_PING, b"p" * 125)
        pong = peer.read_frame()
        peer.send_frame(OP_CLOSE, struct.pack("!H", 1000) + b"r" * 123)
        return pong, peer.expect_close()

    server = raw_server(script)
    with websync.connect(server.url) as ws, pytest.raises(websync.ConnectionClosedOK) as info:
        ws.recv(timeout=5)
    assert info.value.reason == "r" * 123
    pong, close = server.result()
    assert (pong.opcode, pong.payload) == (OP_PONG, b"p" * 125)
    assert close.close_code == 1000


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
def test_fragmented_control_frame(raw_server, opcode):
    _, sent, _ = run(raw_server, frame(opcode, b"", fin=False))
    assert sent.close_code == 1002


def test_continuation_without_message(raw_server):
    _, sent, _ = run(raw_server, frame(OP_CONT, b"orphan"))
    assert sent.close_code == 1002


def test_new_message_before_previous_ended(raw_server):
    _, sent, _ = run(raw_server, frame(OP_TEXT, b"one", fin=False) + frame(OP_BINARY, b"two"))
    assert sent.close_code == 1002


def test_masked_server_frame(raw_server):
    _, sent, _ = run(raw_server, masked_frame(OP_TEXT, b"masked"))
    assert sent.close_code == 1002


def test_length_with_most_significant_bit(raw_server):
    wire = bytes([0x82, 127]) + struct.pack("!Q", 1 << 63)
    _, sent, _ = run(raw_server, wire, max_size=None)
    assert sent.close_code == 1002


@pytest.mark.parametrize(
    "wire",
    [
        frame(OP_TEXT, b"\xff"),
        frame(OP_TEXT, b"caf\xc3"),  # truncated at the end of the message
        frame(OP_TEXT, b"\xed\xa0\x80"),  # a UTF-16 surrogate
        frame(OP_TEXT, b"\xc0\xaf"),  # overlong encoding
        frame(OP_TEXT, b"ok", fin=False) + frame(OP_CONT, b"\xf4\x90\x80\x80"),  # > U+10FFFF
        frame(OP_TEXT, b"\xce", fin=False) + frame(OP_CONT, b"\xba\xe1\xbd\xb9\xce", fin=True),
    ],
    ids=["ff", "truncated", "surrogate", "overlong", "above-max", "fragmented-truncated"],
)
def test_invalid_utf8_text(raw_server, wire):
    _, sent, error = run(raw_server, wire)
    assert sent.close_code == 1007
    assert error.code == 1007


def test_invalid_utf8_fails_before_the_message_ends(raw_server):
    # the first fragment is already invalid: the client must not wait for the rest
    def script(peer):
        peer.handshake()
        peer.send_frame(OP_TEXT, b"\xff\xfe", fin=False)
        return peer.expect_close()

    server = raw_server(script)
    with websync.connect(server.url) as ws, pytest.raises(websync.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert info.value.code == 1007
    assert server.result().close_code == 1007


def test_utf8_split_between_fragments_is_valid(raw_server):
    text = "κόσμε €"
    data = text.encode()

    def script(peer):
        peer.handshake()
        peer.send(frame(OP_TEXT, data[:1], fin=False) + frame(OP_CONT, data[1:4], fin=False) + frame(OP_CONT, data[4:]))
        peer.send_frame(OP_CLOSE, struct.pack("!H", 1000))
        return peer.expect_close()

    server = raw_server(script)
    with websync.connect(server.url) as ws:
        assert ws.recv(timeout=5) == text
    assert server.result().close_code == 1000


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
def test_invalid_close_code(raw_server, code):
    _, sent, _ = run(raw_server, frame(OP_CLOSE, struct.pack("!H", code)))
    assert sent.close_code == 1002


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999])
def test_valid_close_code_is_echoed(raw_server, code):
    def script(peer):
        peer.handshake()
        peer.send_frame(OP_CLOSE, struct.pack("!H", code) + b"why")
        return peer.expect_close()

    server = raw_server(script)
    with websync.connect(server.url) as ws, pytest.raises(websync.ConnectionClosed) as info:
        ws.recv(timeout=5)
    assert (info.value.code, info.value.reason) == (code, "why")
    assert server.result().close_code == code


def test_close_payload_of_one_byte(raw_server):
    _, sent, _ = run(raw_server, frame(OP_CLOSE, b"\x03"))
    assert sent.close_code == 1002


def test_close_reason_invalid_utf8(raw_server):
    _, sent, _ = run(raw_server, frame(OP_CLOSE, struct.pack("!H", 1000) + b"\xff"))
    assert sent.close_code in (1002, 1007)


def test_oversized_message_fails_on_the_header(raw_server):
    # only the header of a 2 MiB frame is sent: the client must refuse it without the payload
    _, sent, error = run(raw_server, bytes([0x82, 127]) + struct.pack("!Q", 2 * 2**20))
    assert sent.close_code == 1009
    assert error.code == 1009


def test_oversized_fragmented_message(raw_server):
    wire = frame(OP_BINARY, bytes(600_000), fin=False) + frame(OP_CONT, bytes(600_000))
    _, sent, _ = run(raw_server, wire)
    assert sent.close_code == 1009


def test_compressed_message_inflates_correctly(raw_server):
    # the positive twin of the bombs below: the same encoding, within max_size
    def script(peer):
        peer.handshake(DEFLATE)
        peer.send_frame(OP_BINARY, deflate(bytes(2 * 2**20)), rsv=4)
        peer.send_frame(OP_TEXT, deflate("é".encode() * 1000), rsv=4)
        peer.send_frame(OP_CLOSE, struct.pack("!H", 1000))
        return peer.expect_close()

    server = raw_server(script)
    with websync.connect(server.url, max_size=2 * 2**20) as ws:
        assert ws.extensions == ["permessage-deflate"]
        assert ws.recv(timeout=5) == bytes(2 * 2**20)
        assert ws.recv(timeout=5) == "é" * 1000
    assert server.result().close_code == 1000


@pytest.mark.parametrize("inflated", [2**20 + 1, 16 * 2**20])
def test_compressed_bomb(raw_server, inflated):
    bomb = deflate(bytes(inflated))
    assert len(bomb) < 2**20 // 10
    _, sent, error = run(raw_server, frame(OP_BINARY, bomb, rsv=4), extensions=DEFLATE)
    assert sent.close_code == 1009
    assert error.code == 1009


def test_compressed_bomb_in_fragments(raw_server):
    bomb = deflate(bytes(8 * 2**20))
    half = len(bomb) // 2
    wire = frame(OP_BINARY, bomb[:half], rsv=4, fin=False) + frame(OP_CONT, bomb[half:])
    _, sent, _ = run(raw_server, wire, extensions=DEFLATE)
    assert sent.close_code == 1009


def test_compressed_bomb_respects_custom_max_size(raw_server):
    _, sent, _ = run(raw_server, frame(OP_BINARY, deflate(bytes(10_001)), rsv=4), extensions=DEFLATE, max_size=10_000)
    assert sent.close_code == 1009


def test_invalid_compressed_data(raw_server):
    _, sent, _ = run(raw_server, frame(OP_BINARY, b"\xff\xff\xff\xff garbage", rsv=4), extensions=DEFLATE)
    assert sent.close_code in (1002, 1007)


def test_compressed_frame_without_deflate_negotiated(raw_server):
    _, sent, _ = run(raw_server, frame(OP_BINARY, deflate(b"hello"), rsv=4), compression=None)
    assert sent.close_code == 1002


def test_peer_keeps_sending_after_violation(raw_server):
    # the client fails the connection and ends even if the peer never closes TCP
    def script(peer):
        peer.handshake()
        peer.send_frame(0x3, b"")
        close = peer.expect_close()
        peer.wait_stop()
        return close

    server = raw_server(script)
    start = time.monotonic()
    with websync.connect(server.url, close_timeout=0.3) as ws, pytest.raises(websync.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert time.monotonic() - start < 2
    assert info.value.code == 1002
    assert not ws.worker.is_alive()


def test_recv_with_a_timeout_stays_within_it_when_a_violation_meets_a_blocked_sender(raw_server):
    """The peer stops reading (a send() blocks) and then breaks the protocol: the recv() that
    reaches the violation leaves the failing close to the worker instead of waiting to write it
    (it blocked for 2 x close_timeout + 1 s), and the next ones report 1002."""

    def script(peer):
        peer.handshake()
        time.sleep(0.5)  # the client's sends fill the buffers meanwhile
        peer.send(peer.encode_frame(OP_TEXT, b"hello") + bytes([0xC1, 1]) + b"x")  # RSV1 without an extension
        peer.wait_stop()

    server = raw_server(script)
    ws = websync.connect(server.url, close_timeout=2, ping_interval=None)
    sending = threading.Thread(target=send_until_closed, args=(ws,))
    sending.start()
    time.sleep(0.8)
    assert ws.recv(timeout=5) == "hello"
    longest = 0.0
    with pytest.raises(websync.ConnectionClosedError) as closed:
        for _ in range(50):
            started = time.monotonic()
            try:
                ws.recv(timeout=0.2)
            except TimeoutError:
                pass
            longest = max(longest, time.monotonic() - started)
    assert closed.value.code == 1002
    assert longest < 1.5
    ws.close()
    sending.join(5)
