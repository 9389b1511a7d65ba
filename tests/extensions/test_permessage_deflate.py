"""permessage-deflate (RFC 7692): wire bytes, context takeover, window bits, limits, negotiation, interop."""

from __future__ import annotations

import os
import time
import tracemalloc
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate as WebsocketsPerMessageDeflate
from websockets.frames import Frame as WebsocketsFrame
from websockets.frames import Opcode as WebsocketsOpcode

from websync.core.errors import NegotiationError, PayloadTooBig, ProtocolError
from websync.core.frames import Opcode, WireFrame
from websync.extensions import (
    ClientPerMessageDeflate,
    Extension,
    ExtensionParams,
    PerMessageDeflate,
    ServerPerMessageDeflate,
)

TEXT, BINARY, CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION
MiB = 1 << 20


def frames(opcode: Opcode, chunks: Sequence[bytes]) -> list[WireFrame]:
    """A message as frames: ``opcode`` then continuations, FIN on the last."""
    return [WireFrame(opcode if i == 0 else CONT, chunk, fin=i == len(chunks) - 1) for i, chunk in enumerate(chunks)]


def wire(opcode: Opcode, *payloads: bytes) -> list[WireFrame]:
    """Received frames of a compressed message: RSV1 on the first one only."""
    message = frames(opcode, payloads)
    message[0].rsv1 = True
    return message


def decode_message(ext: Extension, message: Iterable[WireFrame], max_size: int | None = None) -> bytes:
    return b"".join(ext.decode(frame, max_size=max_size).payload for frame in message)


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


# RFC 7692 section 7.2.3: the example payloads, all meaning "Hello".
HELLO = b"\xf2\x48\xcd\xc9\xc9\x07\x00"  # 7.2.3.1, 7.2.3.2 first message
HELLO_AGAIN = b"\xf2\x00\x11\x00\x00"  # 7.2.3.2: second "Hello" sharing the window
HELLO_STORED = b"\x00\x05\x00\xfa\xff\x48\x65\x6c\x6c\x6f\x00"  # 7.2.3.3
HELLO_BFINAL = b"\xf3\x48\xcd\xc9\xc9\x07\x00\x00"  # 7.2.3.4
HELLO_TWO_BLOCKS = b"\xf2\x48\x05\x00\x00\x00\xff\xff\xca\xc9\xc9\x07\x00"  # 7.2.3.5
HELLO_FLUSHED = b"\xf2\x48\xcd\xc9\xc9\x07\x00\x00\x00\xff\xff"  # 7.2.3.6 first fragment


class TestRfcExamples:
    def test_single_frame_encode(self) -> None:
        frame = PerMessageDeflate().encode(WireFrame(TEXT, b"Hello"))
        assert frame == WireFrame(TEXT, HELLO, fin=True, rsv1=True)

    @pytest.mark.parametrize(
        "payloads",
        [
            [HELLO],
            [HELLO[:3], HELLO[3:]],  # 7.2.3.1, fragmented: 0x41 0x03 ... / 0x80 0x04 ...
            [HELLO_STORED],
            [HELLO_BFINAL],
            [HELLO_TWO_BLOCKS],
            [HELLO_FLUSHED, b"\x00"],  # 7.2.3.6: the final fragment is an empty block
        ],
        ids=["one-block", "fragmented", "stored", "bfinal", "two-blocks", "empty-fragment"],
    )
    def test_decode(self, payloads: list[bytes]) -> None:
        ext = PerMessageDeflate()
        decoded = [ext.decode(frame, max_size=None) for frame in wire(TEXT, *payloads)]
        assert b"".join(frame.payload for frame in decoded) == b"Hello"
        assert not any(frame.rsv1 for frame in decoded)
        assert [frame.opcode for frame in decoded] == [TEXT] + [CONT] * (len(payloads) - 1)

    def test_sharing_the_window(self) -> None:
        ext = PerMessageDeflate()
        sent = [ext.encode(WireFrame(TEXT, b"Hello")).payload for _ in range(2)]
        assert sent == [HELLO, HELLO_AGAIN]
        receiver = PerMessageDeflate()
        assert [decode_message(receiver, wire(TEXT, payload)) for payload in sent] == [b"Hello", b"Hello"]

    def test_empty_final_fragment_encode(self) -> None:
        ext = PerMessageDeflate()
        sent = [ext.encode(frame) for frame in frames(TEXT, [b"Hello", b""])]
        assert sent == [WireFrame(TEXT, HELLO_FLUSHED, fin=False, rsv1=True), WireFrame(CONT, b"\x00")]

    def test_new_stream_after_bfinal(self) -> None:
        ext = PerMessageDeflate()
        assert decode_message(ext, wire(TEXT, HELLO_BFINAL)) == b"Hello"
        assert decode_message(ext, wire(TEXT, HELLO)) == b"Hello"


class TestContextTakeover:
    def test_local_no_takeover_resets_after_each_message(self) -> None:
        ext = PerMessageDeflate(local_no_context_takeover=True)
        data = os.urandom(100) * 3
        sent = [b"".join(ext.encode(frame).payload for frame in frames(BINARY, split(data, 70))) for _ in range(3)]
        assert sent[0] == sent[1] == sent[2]
        # Each message decodes alone, with a fresh zlib stream.
        assert zlib.decompressobj(wbits=-15).decompress(sent[2] + b"\x00\x00\xff\xff") == data

    def test_remote_no_takeover_resets_after_each_message(self) -> None:
        # HELLO_AGAIN refers to the previous message: a reset decompressor cannot resolve it.
        ext = PerMessageDeflate(remote_no_context_takeover=True)
        assert decode_message(ext, wire(TEXT, HELLO)) == b"Hello"
        with pytest.raises(ProtocolError) as caught:
            decode_message(ext, wire(TEXT, HELLO_AGAIN))
        assert caught.value.close_code == 1007

    def test_remote_takeover_keeps_the_window_across_fragmented_messages(self) -> None:
        ext = PerMessageDeflate()
        assert decode_message(ext, wire(TEXT, HELLO[:2], HELLO[2:5], HELLO[5:])) == b"Hello"
        assert decode_message(ext, wire(TEXT, HELLO_AGAIN[:1], HELLO_AGAIN[1:])) == b"Hello"


class TestWindowBits:
    # zlib checks distances against the window only across calls: the tests send a block and
    # then the same block again, as a second message, so that the repeat lies in the window.

    @staticmethod
    def inflate_messages(payloads: Iterable[bytes], wbits: int) -> list[bytes]:
        decompressor = zlib.decompressobj(wbits=wbits)
        return [decompressor.decompress(payload + b"\x00\x00\xff\xff") for payload in payloads]

    @staticmethod
    def encode_messages(ext: PerMessageDeflate, messages: Iterable[bytes]) -> list[bytes]:
        return [ext.encode(WireFrame(BINARY, data)).payload for data in messages]

    @pytest.mark.parametrize("bits, distance", [(8, 257), (8, 300), (8, 511), (9, 600), (12, 5000)])
    def test_local_window_limits_distances(self, bits: int, distance: int) -> None:
        block = os.urandom(distance)
        messages = [block, block, block * 3]
        limited = self.encode_messages(PerMessageDeflate(local_max_window_bits=bits), messages)
        assert self.inflate_messages(limited, -bits) == messages
        unlimited = self.encode_messages(PerMessageDeflate(), messages)
        assert sum(map(len, unlimited)) < sum(map(len, limited))
        with pytest.raises(zlib.error, match="too far back"):  # the check above is meaningful
            self.inflate_messages(unlimited, -bits)

    def test_remote_window_is_enforced(self) -> None:
        block = os.urandom(1000)
        sent = self.encode_messages(PerMessageDeflate(), [block, block])
        receiver = PerMessageDeflate(remote_max_window_bits=10)
        assert [decode_message(receiver, wire(BINARY, payload)) for payload in sent] == [block, block]
        receiver = PerMessageDeflate(remote_max_window_bits=9)
        assert decode_message(receiver, wire(BINARY, sent[0])) == block
        with pytest.raises(ProtocolError) as caught:
            decode_message(receiver, wire(BINARY, sent[1]))
        assert caught.value.close_code == 1007

    @pytest.mark.parametrize(
        "kwargs", [{"local_max_window_bits": 7}, {"local_max_window_bits": 16}, {"remote_max_window_bits": 7}]
    )
    def test_invalid_window_bits(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ValueError):
            PerMessageDeflate(**kwargs)


class TestFrames:
    def test_control_frames_pass_through_mid_message(self) -> None:
        ext = PerMessageDeflate()
        ping = WireFrame(Opcode.PING, b"ping")
        first = ext.encode(WireFrame(TEXT, b"He", fin=False))
        assert ext.encode(ping) is ping
        last = ext.encode(WireFrame(CONT, b"llo"))
        assert (first.rsv1, last.rsv1) == (True, False)
        receiver = PerMessageDeflate()
        assert receiver.decode(first, max_size=None).payload + receiver.decode(ping, max_size=None).payload == b"Heping"
        assert receiver.decode(last, max_size=None).payload == b"llo"

    def test_uncompressed_messages_pass_through(self) -> None:
        ext = PerMessageDeflate()
        assert decode_message(ext, wire(TEXT, HELLO)) == b"Hello"
        plain = frames(BINARY, [b"\xf2\x48", b"\xcd"])  # would be garbage if inflated
        assert [ext.decode(frame, max_size=None) for frame in plain] == plain
        assert decode_message(ext, wire(TEXT, HELLO_AGAIN)) == b"Hello"  # the window is kept

    def test_flags_kept(self) -> None:
        sent = PerMessageDeflate().encode(WireFrame(BINARY, b"x", fin=False, rsv2=True))
        assert (sent.opcode, sent.fin, sent.rsv1, sent.rsv2, sent.rsv3) == (BINARY, False, True, True, False)

    @pytest.mark.parametrize("compressed", [True, False])
    def test_rsv1_on_continuation(self, compressed: bool) -> None:
        ext = PerMessageDeflate()
        ext.decode(WireFrame(TEXT, HELLO_FLUSHED, fin=False, rsv1=compressed), max_size=None)
        with pytest.raises(ProtocolError) as caught:
            ext.decode(WireFrame(CONT, b"\x00", rsv1=True), max_size=None)
        assert caught.value.close_code == 1002

    @pytest.mark.parametrize("payload", [b"\xff\xff\xff", b"\xf2\x48\xcd\xc9\xc9\x07\x00\x00\x00\x00\x00"])
    def test_corrupted_data(self, payload: bytes) -> None:
        with pytest.raises(ProtocolError) as caught:
            decode_message(PerMessageDeflate(), wire(BINARY, payload))
        assert caught.value.close_code == 1007

    def test_empty_messages(self) -> None:
        sender, receiver = PerMessageDeflate(), PerMessageDeflate()
        for data in [b"", b"abc", b"", b"abc", b""]:
            sent = sender.encode(WireFrame(BINARY, data))
            assert sent.rsv1
            assert decode_message(receiver, [sent]) == data
        assert PerMessageDeflate().encode(WireFrame(TEXT, b"")).payload == b"\x00"

    def test_compress_settings(self) -> None:
        stored = PerMessageDeflate(compress_settings={"level": 0}).encode(WireFrame(TEXT, b"aaaaaaaa"))
        assert b"aaaaaaaa" in stored.payload
        assert b"aaaaaaaa" not in PerMessageDeflate().encode(WireFrame(TEXT, b"aaaaaaaa")).payload
        with pytest.raises(ValueError):
            PerMessageDeflate(compress_settings={"wbits": -9})


def negotiated(
    client: ClientPerMessageDeflate, server: ServerPerMessageDeflate
) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    response, server_ext = server.negotiate(client.offer(), [])
    return client.accept(response, []), server_ext


SETTINGS = [
    ({}, {}),
    ({"client_no_context_takeover": True, "server_no_context_takeover": True}, {}),
    ({}, {"client_no_context_takeover": True, "server_no_context_takeover": True}),
    ({"client_max_window_bits": 9, "server_max_window_bits": 10}, {}),
    ({}, {"client_max_window_bits": 8, "server_max_window_bits": 8}),
    ({"client_max_window_bits": 8, "server_max_window_bits": 8}, {}),
    ({"client_max_window_bits": None}, {"server_no_context_takeover": True, "compress_settings": {"level": 1}}),
]
MESSAGES = [b"", b"Hello", os.urandom(3000), b"Hello" * 5000, b"", b"Hello" * 5000, os.urandom(70000)]


class TestRoundTrip:
    @pytest.mark.parametrize("client_kwargs, server_kwargs", SETTINGS)
    @pytest.mark.parametrize("fragment", [None, 1, 1000])
    def test_both_directions(
        self, client_kwargs: dict[str, Any], server_kwargs: dict[str, Any], fragment: int | None
    ) -> None:
        client, server = negotiated(ClientPerMessageDeflate(**client_kwargs), ServerPerMessageDeflate(**server_kwargs))
        for sender, receiver in [(client, server), (server, client)]:
            for data in MESSAGES:
                chunks = [data] if fragment is None else split(data, fragment)
                sent = [sender.encode(frame) for frame in frames(BINARY, chunks)]
                assert sent[0].rsv1 and not any(frame.rsv1 for frame in sent[1:])
                assert decode_message(receiver, sent, max_size=len(data)) == data


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """1 GiB of zeros as one message's payload (about 1 MiB)."""
    compressor = zlib.compressobj(level=9, wbits=-15)
    chunk = bytes(16 * MiB)
    first, steady, again = (compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH) for _ in range(3))
    assert steady == again  # with a window full of zeros, every further 16 MiB compresses the same
    return first + steady * 63


class TestMaxSize:
    def test_bomb_stops_at_the_limit(self, bomb: bytes) -> None:
        ext = PerMessageDeflate()
        tracemalloc.start()
        started = time.monotonic()
        try:
            with pytest.raises(PayloadTooBig) as caught:
                ext.decode(WireFrame(BINARY, bomb, rsv1=True), max_size=MiB)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert caught.value.close_code == 1009
        assert time.monotonic() - started < 2
        assert peak < 8 * MiB

    def test_fragmented_bomb(self, bomb: bytes) -> None:
        ext = PerMessageDeflate()
        message = wire(BINARY, *split(bomb, 64 * 1024))
        limit = 100 * MiB
        decoded = 0
        with pytest.raises(PayloadTooBig):
            for frame in message:
                decoded += len(ext.decode(frame, max_size=limit).payload)
        assert decoded <= limit

    @pytest.mark.parametrize("fragment", [None, 1000, 4095])
    def test_limit_is_for_the_whole_message(self, fragment: int | None) -> None:
        data = b"x" * 10000
        for max_size, fits in [(10000, True), (9999, False), (None, True)]:
            receiver = PerMessageDeflate(remote_no_context_takeover=True)
            sender = PerMessageDeflate(local_no_context_takeover=True)
            chunks = [data] if fragment is None else split(data, fragment)
            sent = [sender.encode(frame) for frame in frames(BINARY, chunks)]
            if fits:
                assert decode_message(receiver, sent, max_size) == data
                assert decode_message(receiver, sent, max_size) == data  # the count restarts
            else:
                with pytest.raises(PayloadTooBig):
                    decode_message(receiver, sent, max_size)


def parameters(ext: PerMessageDeflate) -> tuple[bool, bool, int, int]:
    return (
        ext.remote_no_context_takeover,
        ext.local_no_context_takeover,
        ext.remote_max_window_bits,
        ext.local_max_window_bits,
    )


class TestClientNegotiation:
    def test_default_offer(self) -> None:
        assert ClientPerMessageDeflate().offer() == [("client_max_window_bits", None)]

    def test_full_offer(self) -> None:
        factory = ClientPerMessageDeflate(
            client_max_window_bits=10,
            server_max_window_bits=12,
            client_no_context_takeover=True,
            server_no_context_takeover=True,
        )
        assert factory.offer() == [
            ("server_no_context_takeover", None),
            ("client_no_context_takeover", None),
            ("server_max_window_bits", "12"),
            ("client_max_window_bits", "10"),
        ]
        assert ClientPerMessageDeflate(client_max_window_bits=None).offer() == []

    @pytest.mark.parametrize(
        "kwargs, response, expected",
        [
            ({}, [], (False, False, 15, 15)),
            (
                {},
                [
                    ("server_no_context_takeover", None),
                    ("client_no_context_takeover", None),
                    ("server_max_window_bits", "10"),
                    ("client_max_window_bits", "11"),
                ],
                (True, True, 10, 11),
            ),
            ({"client_max_window_bits": 12}, [], (False, False, 15, 12)),
            ({"client_max_window_bits": 12}, [("client_max_window_bits", "9")], (False, False, 15, 9)),
            ({}, [("client_max_window_bits", "8")], (False, False, 15, 8)),
            ({"client_no_context_takeover": True}, [], (False, True, 15, 15)),
            ({"server_max_window_bits": 12}, [("server_max_window_bits", "8")], (False, False, 8, 15)),
            ({"server_no_context_takeover": True}, [("server_no_context_takeover", None)], (True, False, 15, 15)),
        ],
    )
    def test_accept(
        self, kwargs: dict[str, Any], response: ExtensionParams, expected: tuple[bool, bool, int, int]
    ) -> None:
        ext = ClientPerMessageDeflate(**kwargs).accept(response, [])
        assert parameters(ext) == expected

    @pytest.mark.parametrize(
        "kwargs, response",
        [
            ({}, [("unknown", None)]),
            ({}, [("server_no_context_takeover", None), ("server_no_context_takeover", None)]),
            ({}, [("server_max_window_bits", "10"), ("server_max_window_bits", "10")]),
            ({}, [("server_no_context_takeover", "1")]),
            ({}, [("server_max_window_bits", None)]),
            ({}, [("client_max_window_bits", None)]),
            ({}, [("server_max_window_bits", "7")]),
            ({}, [("server_max_window_bits", "16")]),
            ({}, [("server_max_window_bits", "09")]),
            ({}, [("server_max_window_bits", "ten")]),
            ({"client_max_window_bits": None}, [("client_max_window_bits", "10")]),
            ({"client_max_window_bits": False}, [("client_max_window_bits", "10")]),
            ({"client_max_window_bits": 10}, [("client_max_window_bits", "11")]),
            ({"server_max_window_bits": 10}, []),
            ({"server_max_window_bits": 10}, [("server_max_window_bits", "11")]),
            ({"server_no_context_takeover": True}, []),
        ],
    )
    def test_reject(self, kwargs: dict[str, Any], response: ExtensionParams) -> None:
        with pytest.raises(NegotiationError):
            ClientPerMessageDeflate(**kwargs).accept(response, [])

    def test_reject_second_permessage_deflate(self) -> None:
        with pytest.raises(NegotiationError):
            ClientPerMessageDeflate().accept([], [PerMessageDeflate()])

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"client_max_window_bits": 7},
            {"client_max_window_bits": 16},
            {"client_max_window_bits": 1},
            {"server_max_window_bits": 7},
            {"compress_settings": {"wbits": 9}},
        ],
    )
    def test_invalid_settings(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ValueError):
            ClientPerMessageDeflate(**kwargs)


class TestServerNegotiation:
    @pytest.mark.parametrize(
        "kwargs, offer, response, expected",
        [
            ({}, [("client_max_window_bits", None)], [], (False, False, 15, 15)),
            ({}, [], [], (False, False, 15, 15)),
            (
                {},
                [("server_no_context_takeover", None), ("client_no_context_takeover", None)],
                [("server_no_context_takeover", None), ("client_no_context_takeover", None)],
                (True, True, 15, 15),
            ),
            (
                {"server_no_context_takeover": True, "client_no_context_takeover": True},
                [],
                [("server_no_context_takeover", None), ("client_no_context_takeover", None)],
                (True, True, 15, 15),
            ),
            ({}, [("server_max_window_bits", "10")], [("server_max_window_bits", "10")], (False, False, 15, 10)),
            ({"server_max_window_bits": 12}, [], [("server_max_window_bits", "12")], (False, False, 15, 12)),
            (
                {"server_max_window_bits": 12},
                [("server_max_window_bits", "10")],
                [("server_max_window_bits", "10")],
                (False, False, 15, 10),
            ),
            (
                {"server_max_window_bits": 10},
                [("server_max_window_bits", "12")],
                [("server_max_window_bits", "10")],
                (False, False, 15, 10),
            ),
            ({"client_max_window_bits": 10}, [], [], (False, False, 15, 15)),
            (
                {"client_max_window_bits": 10},
                [("client_max_window_bits", None)],
                [("client_max_window_bits", "10")],
                (False, False, 10, 15),
            ),
            (
                {"client_max_window_bits": 10},
                [("client_max_window_bits", "12")],
                [("client_max_window_bits", "10")],
                (False, False, 10, 15),
            ),
            ({}, [("client_max_window_bits", "8")], [("client_max_window_bits", "8")], (False, False, 8, 15)),
            ({}, [("server_max_window_bits", "8")], [("server_max_window_bits", "8")], (False, False, 15, 8)),
        ],
    )
    def test_negotiate(
        self,
        kwargs: dict[str, Any],
        offer: ExtensionParams,
        response: ExtensionParams,
        expected: tuple[bool, bool, int, int],
    ) -> None:
        answer, ext = ServerPerMessageDeflate(**kwargs).negotiate(offer, [])
        assert answer == response
        assert parameters(ext) == expected

    @pytest.mark.parametrize(
        "offer",
        [
            [("unknown", None)],
            [("client_max_window_bits", None), ("client_max_window_bits", "10")],
            [("client_no_context_takeover", "x")],
            [("server_max_window_bits", None)],
            [("client_max_window_bits", "16")],
        ],
    )
    def test_decline(self, offer: ExtensionParams) -> None:
        with pytest.raises(NegotiationError):
            ServerPerMessageDeflate().negotiate(offer, [])

    def test_decline_second_permessage_deflate(self) -> None:
        with pytest.raises(NegotiationError):
            ServerPerMessageDeflate().negotiate([], [PerMessageDeflate()])

    @pytest.mark.parametrize(
        "kwargs", [{"server_max_window_bits": 16}, {"client_max_window_bits": 7}, {"compress_settings": {"x": 1}}]
    )
    def test_invalid_settings(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ValueError):
            ServerPerMessageDeflate(**kwargs)


def to_websockets(frame: WireFrame) -> WebsocketsFrame:
    return WebsocketsFrame(WebsocketsOpcode(frame.opcode), frame.payload, frame.fin, frame.rsv1, frame.rsv2, frame.rsv3)


def from_websockets(frame: WebsocketsFrame) -> WireFrame:
    return WireFrame(Opcode(frame.opcode.value), bytes(frame.data), frame.fin, frame.rsv1, frame.rsv2, frame.rsv3)


class TestWebsocketsInterop:
    """Compress with one implementation and decompress with the other."""

    @pytest.mark.parametrize("no_context_takeover", [False, True])
    @pytest.mark.parametrize("window_bits", [9, 12, 15])
    @pytest.mark.parametrize("fragment", [None, 1, 777])
    def test_interop(self, no_context_takeover: bool, window_bits: int, fragment: int | None) -> None:
        ours = PerMessageDeflate(
            remote_no_context_takeover=no_context_takeover,
            local_no_context_takeover=no_context_takeover,
            remote_max_window_bits=window_bits,
            local_max_window_bits=window_bits,
        )
        theirs = WebsocketsPerMessageDeflate(no_context_takeover, no_context_takeover, window_bits, window_bits)
        for data in MESSAGES:
            chunks = [data] if fragment is None else split(data, fragment)
            message = frames(BINARY, chunks)
            received = [theirs.decode(to_websockets(ours.encode(frame)), max_size=None) for frame in message]
            assert b"".join(frame.data for frame in received) == data
            sent = [from_websockets(theirs.encode(to_websockets(frame))) for frame in message]
            assert decode_message(ours, sent) == data
