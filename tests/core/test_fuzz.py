"""Property-based tests (hypothesis) of the two parsers that read what a peer sends.

* The frame parser (:meth:`websync.core.protocol.Protocol.receive_data`): a byte string split at any
  points parses to the same frames, the same error and the same replies as when fed whole; any
  bytes end only in frames or in :attr:`Protocol.error` set to a ProtocolError, never in another
  exception, and the parser keeps no more than one incomplete frame (bounded by max_size).
* The handshake parser (:class:`websync.core.handshake.ResponseParser`): the same for split input;
  any bytes give a Response, None (incomplete) or InvalidHandshake, and its buffer stays bounded.

The default run keeps to ~200 examples per property; ``HYPOTHESIS_PROFILE=campaign`` runs many
more (see docs/load.md, "Fuzzing", for what a long campaign found).
"""

from __future__ import annotations

import os
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire import owed_bytes

from websync.core.errors import InvalidHandshake, ProtocolError
from websync.core.frames import Binary, Close, Ping, Pong, Text
from websync.core.handshake import MAX_HEADER_BYTES, ResponseParser
from websync.core.protocol import Protocol, Role
from websync.extensions.permessage_deflate import PerMessageDeflate

settings.register_profile("default", max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("campaign", max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

CAMPAIGN = os.environ.get("HYPOTHESIS_PROFILE") == "campaign"
pytestmark = pytest.mark.timeout(0 if CAMPAIGN else 120)

MAX_SIZE = 4096


# -- building frames ------------------------------------------------------------------------------


def encode(first: int, payload: bytes, *, mask: bytes | None = None, length: int | None = None) -> bytes:
    size = len(payload) if length is None else length
    second = 0x80 if mask is not None else 0
    if size < 126:
        header = struct.pack("!BB", first, second | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, second | 126, size)
    else:
        header = struct.pack("!BBQ", first, second | 127, size)
    if mask is None:
        return header + payload
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


payloads = st.binary(max_size=300)
texts = st.text(max_size=100)


@st.composite
def server_frame(draw: st.DrawFn) -> bytes:
    """One server frame: mostly valid, sometimes subtly not (bits, lengths, masks, UTF-8, codes)."""
    kind = draw(st.sampled_from(["text", "binary", "fragmented", "ping", "pong", "close", "compressed", "odd"]))
    if kind == "text":
        return encode(0x81, draw(texts).encode())
    if kind == "binary":
        return encode(0x82, draw(payloads))
    if kind == "fragmented":
        parts = draw(st.lists(payloads, min_size=2, max_size=4))
        opcode = draw(st.sampled_from([0x1, 0x2]))
        if opcode == 0x1:
            data = draw(texts).encode()
            cuts = sorted(draw(st.lists(st.integers(0, len(data)), min_size=1, max_size=3)))
            parts = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
        frames = [encode(opcode if i == 0 else 0x0, part) for i, part in enumerate(parts)]
        frames[-1] = bytes([frames[-1][0] | 0x80]) + frames[-1][1:]
        if draw(st.booleans()):  # a ping between fragments is allowed
            frames.insert(1, encode(0x89, draw(st.binary(max_size=125))))
        return b"".join(frames)
    if kind in ("ping", "pong"):
        return encode(0x89 if kind == "ping" else 0x8A, draw(st.binary(max_size=125)))
    if kind == "close":
        code = draw(st.sampled_from([1000, 1001, 1002, 1003, 1005, 1006, 1011, 3000, 4999, 999, 5000]))
        return encode(0x88, b"" if code == 1005 else struct.pack("!H", code) + draw(texts).encode()[:100])
    if kind == "compressed":
        return encode(0xC2, deflated(draw(payloads)))
    # odd: a random first byte, maybe a mask, maybe a lying length, maybe invalid UTF-8
    first = draw(st.integers(0, 255))
    payload = draw(payloads)
    mask = draw(st.none() | st.binary(min_size=4, max_size=4))
    length = draw(st.none() | st.integers(0, 2**64 - 1))
    return encode(first, payload, mask=mask, length=length)


streams = st.lists(server_frame(), max_size=8).map(b"".join)
any_bytes = st.binary(max_size=2000)
wire = st.one_of(streams, any_bytes, st.tuples(streams, any_bytes).map(b"".join))


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


def new_protocol(deflate: bool) -> Protocol:
    extensions = [PerMessageDeflate()] if deflate else []
    return Protocol(Role.CLIENT, max_size=MAX_SIZE, extensions=extensions, mask_key=lambda: b"\0\0\0\0")


def describe(frame: object) -> object:
    if isinstance(frame, (Text, Binary, Ping, Pong)):
        return (type(frame).__name__, bytes(frame.data) if not isinstance(frame, Text) else frame.data)
    if isinstance(frame, Close):
        return ("Close", frame.code, frame.reason)
    raise AssertionError(f"not a frame: {frame!r}")


def parse(chunks: list[bytes], deflate: bool) -> tuple[list[object], object, bytes]:
    """Feed ``chunks``; the frames, the error (type, code, message) and the replies owed.

    (Bytes after a close frame are ignored; whether they sit in the buffer is not compared.)
    """
    protocol = new_protocol(deflate)
    frames: list[object] = []
    for chunk in chunks:
        try:
            frames += [describe(frame) for frame in protocol.receive_data(chunk)]
        except Exception as exc:
            raise AssertionError(f"receive_data raised {exc!r} instead of setting Protocol.error") from exc
        # bounded memory: what is kept is at most one incomplete frame (header + max_size payload)
        assert len(protocol._buffer) <= MAX_SIZE + MAX_SIZE // 256 + 64 + 14
    error = protocol.error
    if error is not None:
        assert isinstance(error, ProtocolError)
        assert error.close_code in (1002, 1007, 1009)
    described = None if error is None else (type(error).__name__, error.close_code, str(error))
    return frames, described, owed_bytes(protocol)


@given(data=wire, cuts=st.lists(st.integers(0, 4000), max_size=20), deflate=st.booleans())
def test_frames_split_anywhere_parse_as_whole(data, cuts, deflate):
    assert parse(split(data, cuts), deflate) == parse([data], deflate)


@given(data=wire, deflate=st.booleans())
def test_frames_byte_by_byte_parse_as_whole(data, deflate):
    assert parse([data[i : i + 1] for i in range(len(data))], deflate) == parse([data], deflate)


@given(data=st.binary(max_size=5000), deflate=st.booleans())
def test_random_bytes_give_frames_or_a_protocol_error(data, deflate):
    parse([data], deflate)  # the assertions are inside parse()


def test_the_strategies_reach_both_outcomes():
    # guards the properties above against a generator that only ever produces errors (or none)
    outcomes = set()

    @given(data=streams)
    @settings(max_examples=100, database=None)
    def collect(data):
        frames, error, _ = parse([data], False)
        outcomes.add((bool(frames), error is not None))

    collect()
    assert (True, False) in outcomes and any(error for _, error in outcomes)


# -- the handshake response -----------------------------------------------------------------------

header_names = st.sampled_from(
    ["Upgrade", "Connection", "Sec-WebSocket-Accept", "Content-Length", "Transfer-Encoding", "X-A", "Bad Name", ""]
)
header_values = st.one_of(
    st.sampled_from(["websocket", "Upgrade", "chunked", "0", "5", "-1", "18446744073709551616", "x" * 50]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=40),
)


@st.composite
def http_response(draw: st.DrawFn) -> bytes:
    status = draw(st.sampled_from(["101", "200", "204", "302", "404", "500", "99", "abc", "1011"]))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2", "ICY"]))
    lines = [f"{version} {status} Reason"]
    for name, value in draw(st.lists(st.tuples(header_names, header_values), max_size=8)):
        lines.append(f"{name}: {value}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    body = draw(st.sampled_from([b"", b"hello", b"5\r\nhello\r\n0\r\n\r\n", b"\x81\x02hi", b"zz\r\n"]))
    if draw(st.booleans()):  # chunk sizes, valid or not
        size = draw(st.sampled_from(["5", "-5", "-ff", "+5", "0x5", "5_0", " 5 ", "5;ext=1", "FFFFFFFFFFFFFFFFF", ""]))
        body = f"{size}\r\n".encode() + draw(st.binary(max_size=20)) + body
    return head + body + draw(st.binary(max_size=50))


responses = st.one_of(
    http_response(), st.binary(max_size=600), st.tuples(http_response(), st.binary(max_size=100)).map(b"".join)
)


def parse_response(chunks: list[bytes]) -> object:
    """What ResponseParser makes of ``chunks``: the response and the bytes after it, or the error."""
    parser = ResponseParser()
    for index, chunk in enumerate(chunks):
        try:
            response = parser.receive_data(chunk)
        except InvalidHandshake as exc:
            return ("error", type(exc).__name__, str(exc))
        except Exception as exc:
            raise AssertionError(f"ResponseParser raised {exc!r}") from exc
        assert len(parser._buffer) <= MAX_HEADER_BYTES + len(chunk)
        if response is not None:
            rest = parser.leftover + b"".join(chunks[index + 1 :]) if response.status == 101 else b""
            return ("response", response.status, response.reason, list(response.headers.items()), response.body, rest)
    response = parser.receive_eof()
    if response is None:
        return ("incomplete",)
    return ("eof", response.status, list(response.headers.items()), response.body)


@given(data=responses, cuts=st.lists(st.integers(0, 700), max_size=20))
def test_responses_split_anywhere_parse_as_whole(data, cuts):
    assert parse_response(split(data, cuts)) == parse_response([data])


@given(data=responses)
def test_responses_byte_by_byte_parse_as_whole(data):
    assert parse_response([data[i : i + 1] for i in range(len(data))]) == parse_response([data])


@given(data=st.binary(max_size=3000))
def test_random_bytes_give_a_response_or_invalid_handshake(data):
    parse_response([data])


def test_an_endless_head_is_refused_once_past_the_limit_whatever_the_chunks():
    parser = ResponseParser()
    with pytest.raises(InvalidHandshake, match="longer than"):
        for _ in range(MAX_HEADER_BYTES):
            parser.receive_data(b"X-Filler: " + b"a" * 100 + b"\r\n")
    assert len(parser._buffer) < 2 * MAX_HEADER_BYTES


@pytest.mark.timeout(5)
@pytest.mark.parametrize("size", [b"-ff", b"-5", b"+5", b"0x5", b"5_0", b""])
def test_a_chunk_size_that_is_not_hex_digits_is_refused(size):
    # "-ff" used to loop forever: int() took it and the parser deleted a negative span
    parser = ResponseParser()
    with pytest.raises(InvalidHandshake, match="chunk size"):
        parser.receive_data(b"HTTP/1.1 500 X\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\nabc\r\n")


@pytest.mark.parametrize("status, headers", [(204, ""), (304, ""), (500, "Content-Length: 5\r\n")])
def test_bytes_after_a_framed_body_are_not_the_body(status, headers):
    parser = ResponseParser()
    response = parser.receive_data(f"HTTP/1.1 {status} X\r\n{headers}\r\n".encode() + b"hellotrailing")
    assert response is not None
    assert response.body == (b"hello" if headers else b"")
