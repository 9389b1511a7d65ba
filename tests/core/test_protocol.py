"""Byte-level tests of the sans-IO state machine in websync.core.protocol (RFC 6455 sections 5 to 7).

Frames the protocol receives are built by hand with struct; frames it sends are parsed by a small
reference parser here, so neither direction depends on the code under test.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass

import pytest
from wire import owed_bytes

from websync.core.errors import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    PayloadTooBig,
    ProtocolError,
)
from websync.core.frames import Binary, Close, Ping, Pong, Text, WireFrame
from websync.core.protocol import DEFAULT_MAX_SIZE, Protocol, Role, State
from websync.extensions.base import Extension

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
KEY = b"\x37\xfa\x21\x3d"
CLIENT_KEY = b"\x0a\x0b\x0c\x0d"
VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000]


# -- helpers ------------------------------------------------------------------------------------


def xor_mask(data: bytes, key: bytes) -> bytes:
    return bytes(byte ^ key[index % 4] for index, byte in enumerate(data))


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    key: bytes | None = None,
    length: int | None = None,
) -> bytes:
    """One frame on the wire; ``key`` masks it; ``length`` overrides the announced length."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    size = len(payload) if length is None else length
    mask_bit = 0x80 if key is not None else 0
    if size < 126:
        header = struct.pack("!BB", first, mask_bit | size)
    elif size < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, size)
    if key is None:
        return header + payload
    return header + key + xor_mask(payload, key)


def peer_frame(role: Role, opcode: int, payload: bytes = b"", **kwargs: object) -> bytes:
    """A frame as the peer of ``role`` sends it: masked towards a server, unmasked towards a client."""
    return frame(opcode, payload, key=KEY if role is Role.SERVER else None, **kwargs)  # type: ignore[arg-type]


@dataclass
class Parsed:
    fin: bool
    rsv: int
    opcode: int
    key: bytes | None
    payload: bytes  # unmasked


def parse(data: bytes) -> list[Parsed]:
    """Reference parser for what the protocol sends; refuses trailing garbage."""
    frames = []
    pos = 0
    while pos < len(data):
        first, second = data[pos], data[pos + 1]
        pos += 2
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack_from("!H", data, pos)
            assert length >= 126, "non-minimal 16-bit length"
            pos += 2
        elif length == 127:
            (length,) = struct.unpack_from("!Q", data, pos)
            assert length >= 65536, "non-minimal 64-bit length"
            pos += 8
        key = None
        if second & 0x80:
            key = data[pos : pos + 4]
            pos += 4
        payload = data[pos : pos + length]
        assert len(payload) == length, "truncated frame"
        pos += length
        if key is not None:
            payload = xor_mask(payload, key)
        frames.append(Parsed(bool(first & 0x80), (first >> 4) & 0x7, first & 0x0F, key, payload))
    return frames


def client(**kwargs: object) -> Protocol:
    return Protocol(Role.CLIENT, mask_key=lambda: CLIENT_KEY, **kwargs)  # type: ignore[arg-type]


def server(**kwargs: object) -> Protocol:
    return Protocol(Role.SERVER, **kwargs)  # type: ignore[arg-type]


def make(role: Role, **kwargs: object) -> Protocol:
    return client(**kwargs) if role is Role.CLIENT else server(**kwargs)


def only_close(protocol: Protocol) -> Parsed:
    """The single close frame queued in data_to_send(), checked for the role's masking."""
    (sent,) = parse(owed_bytes(protocol))
    assert sent.opcode == CLOSE and sent.fin and sent.rsv == 0
    assert (sent.key is not None) is (protocol.role is Role.CLIENT)
    return sent


def state_of(protocol: Protocol) -> State:
    """``protocol.state`` read anew: mypy keeps an earlier ``is`` check's narrowing across the calls that change it."""
    return protocol.state


def assert_failed(protocol: Protocol, code: int) -> None:
    """The protocol failed with ``code`` and queued exactly one close frame carrying it."""
    assert protocol.error is not None
    assert isinstance(protocol.error, ProtocolError)
    assert protocol.error.close_code == code
    assert protocol.close_code == code
    sent = only_close(protocol)
    assert struct.unpack("!H", sent.payload[:2])[0] == code
    sent.payload[2:].decode()  # the reason is valid UTF-8
    assert len(sent.payload) <= 125
    assert protocol.state is State.CLOSING
    assert protocol.close_sent is not None and protocol.close_sent.code == code
    assert protocol.closed_by_peer is False
    assert owed_bytes(protocol) == b""


def assert_healthy(protocol: Protocol) -> None:
    assert protocol.error is None
    assert owed_bytes(protocol) == b""
    assert protocol.state is State.OPEN


ROLES = [Role.CLIENT, Role.SERVER]
role_param = pytest.mark.parametrize("role", ROLES, ids=["client", "server"])


# -- sending: RFC 6455 5.7 examples ---------------------------------------------------------------


def test_send_rfc_examples_unmasked_as_server() -> None:
    proto = server()
    assert proto.send(Text("Hello")) == b"\x81\x05\x48\x65\x6c\x6c\x6f"
    assert proto.send(Text("Hello"), fragment_size=3) == b"\x01\x03\x48\x65\x6c" + b"\x80\x02\x6c\x6f"
    assert proto.send(Ping(b"Hello")) == b"\x89\x05\x48\x65\x6c\x6c\x6f"
    assert proto.send(Binary(b"\x00" * 256)) == b"\x82\x7e\x01\x00" + b"\x00" * 256
    assert proto.send(Binary(b"\x00" * 65536)) == b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00" + b"\x00" * 65536


def test_send_rfc_examples_masked_as_client() -> None:
    proto = Protocol(Role.CLIENT, mask_key=lambda: KEY)
    assert proto.send(Text("Hello")) == b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    assert proto.send(Pong(b"Hello")) == b"\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 65537])
@role_param
def test_send_length_encodings(role: Role, size: int) -> None:
    payload = bytes(index % 251 for index in range(size))
    data = make(role).send(Binary(payload))
    if role is Role.CLIENT:
        expected = frame(BINARY, payload, key=CLIENT_KEY)
    else:
        expected = frame(BINARY, payload)
    assert data == expected
    header_size = {True: 2, False: 4 if size < 65536 else 10}[size < 126] + (4 if role is Role.CLIENT else 0)
    assert len(data) == header_size + size


@pytest.mark.parametrize(
    ("value", "opcode", "payload"),
    [
        (Text(""), TEXT, b""),
        (Text("κόσμε"), TEXT, "κόσμε".encode()),
        (Binary(b""), BINARY, b""),
        (Binary(bytearray(b"\x00\xff")), BINARY, b"\x00\xff"),  # type: ignore[arg-type]
        (Ping(), PING, b""),
        (Ping(b"p" * 125), PING, b"p" * 125),
        (Pong(b"\x01"), PONG, b"\x01"),
        (Close(), CLOSE, b""),
        (Close(1000), CLOSE, b"\x03\xe8"),
        (Close(4999, "bye"), CLOSE, b"\x13\x87bye"),
    ],
)
@role_param
def test_send_single_frames(role: Role, value: object, opcode: int, payload: bytes) -> None:
    (sent,) = parse(make(role).send(value))  # type: ignore[arg-type]
    assert (sent.fin, sent.rsv, sent.opcode, sent.payload) == (True, 0, opcode, payload)
    if role is Role.CLIENT:
        assert sent.key == CLIENT_KEY
    else:
        assert sent.key is None


def test_client_uses_injected_key_per_frame() -> None:
    keys = iter([b"\x01\x02\x03\x04", b"\x05\x06\x07\x08", b"\x09\x0a\x0b\x0c", b"\xff\xfe\xfd\xfc"])
    proto = Protocol(Role.CLIENT, mask_key=lambda: next(keys))
    first = parse(proto.send(Text("abc")))
    rest = parse(proto.send(Binary(b"abcdefg"), fragment_size=3))
    assert [f.key for f in first + rest] == [
        b"\x01\x02\x03\x04",
        b"\x05\x06\x07\x08",
        b"\x09\x0a\x0b\x0c",
        b"\xff\xfe\xfd\xfc",
    ]
    assert [f.payload for f in rest] == [b"abc", b"def", b"g"]
    # The masked bytes on the wire really are XORed with the key.
    wire = Protocol(Role.CLIENT, mask_key=lambda: b"\xff\xff\xff\xff").send(Binary(b"\x00\x0f"))
    assert wire == b"\x82\x82\xff\xff\xff\xff\xff\xf0"


def test_client_default_mask_keys_are_fresh() -> None:
    proto = Protocol(Role.CLIENT)
    frames = [parse(proto.send(Binary(b"\x00" * 8)))[0] for _ in range(8)]
    keys = [f.key for f in frames]
    assert all(key is not None and len(key) == 4 for key in keys)
    assert len(set(keys)) == len(keys)  # 8 random 32-bit keys: a collision means a fixed key
    assert all(f.payload == b"\x00" * 8 for f in frames)
    # Two protocols do not share a key sequence either.
    other = parse(Protocol(Role.CLIENT).send(Binary(b"x")))[0].key
    assert other not in keys


def test_server_never_masks() -> None:
    data = server().send(Text("x" * 300))
    assert data[1] & 0x80 == 0
    assert data == b"\x81\x7e\x01\x2c" + b"x" * 300


# -- sending: fragmentation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "fragment_size", "expected"),
    [
        (10, 3, [3, 3, 3, 1]),
        (9, 3, [3, 3, 3]),
        (4, 1, [1, 1, 1, 1]),
        (5, 5, [5]),
        (5, 6, [5]),
        (5, None, [5]),
        (0, 3, [0]),
        (70000, 65536, [65536, 4464]),
    ],
)
@pytest.mark.parametrize("kind", ["text", "binary"])
@role_param
def test_send_fragmented(role: Role, kind: str, size: int, fragment_size: int | None, expected: list[int]) -> None:
    payload = bytes(97 + index % 26 for index in range(size))
    value = Text(payload.decode()) if kind == "text" else Binary(payload)
    sent = parse(make(role).send(value, fragment_size=fragment_size))
    assert [len(f.payload) for f in sent] == expected
    assert [f.opcode for f in sent] == [TEXT if kind == "text" else BINARY] + [CONT] * (len(expected) - 1)
    assert [f.fin for f in sent] == [False] * (len(expected) - 1) + [True]
    assert all(f.rsv == 0 for f in sent)
    assert b"".join(f.payload for f in sent) == payload


def test_send_fragmented_text_may_split_code_points_and_round_trips() -> None:
    text = "€𝄞é" * 5
    data = client().send(Text(text), fragment_size=5)
    sent = parse(data)
    assert len(sent) > 1
    assert any(_ends_mid_code_point(f.payload) for f in sent[:-1])
    assert server().receive_data(data) == [Text(text)]


def _ends_mid_code_point(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return True
    return False


@pytest.mark.parametrize("fragment_size", [0, -1])
def test_send_fragment_size_must_be_positive(fragment_size: int) -> None:
    with pytest.raises(ValueError):
        server().send(Binary(b"abc"), fragment_size=fragment_size)


@pytest.mark.parametrize("value", [Ping(b"x" * 126), Pong(b"x" * 126)])
def test_send_control_frame_too_long(value: object) -> None:
    proto = client()
    with pytest.raises(ValueError):
        proto.send(value)  # type: ignore[arg-type]
    assert proto.send(Ping(b"ok")) != b""


@pytest.mark.parametrize(
    "value",
    [Close(1005), Close(1006), Close(999), Close(5000), Close(None, "reason"), Close(1000, "x" * 124)],
)
def test_send_invalid_close(value: Close) -> None:
    proto = client()
    with pytest.raises(ValueError):
        proto.send(value)
    assert proto.state is State.OPEN and proto.close_sent is None


@pytest.mark.parametrize("value", [b"bytes", "str", None, 42])
def test_send_not_a_frame(value: object) -> None:
    with pytest.raises(TypeError):
        client().send(value)  # type: ignore[arg-type]


# -- receiving: basics --------------------------------------------------------------------------


def test_receive_rfc_examples_as_client() -> None:
    proto = client()
    data = (
        b"\x81\x05\x48\x65\x6c\x6c\x6f"
        + b"\x01\x03\x48\x65\x6c\x80\x02\x6c\x6f"
        + b"\x89\x05\x48\x65\x6c\x6c\x6f"
        + b"\x82\x7e\x01\x00"
        + b"\x00" * 256
        + b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"
        + b"\x00" * 65536
    )
    assert proto.receive_data(data) == [
        Text("Hello"),
        Text("Hello"),
        Ping(b"Hello"),
        Binary(b"\x00" * 256),
        Binary(b"\x00" * 65536),
    ]
    assert_healthy(proto)


def test_receive_rfc_examples_as_server() -> None:
    proto = server()
    data = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58" + b"\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    assert proto.receive_data(data) == [Text("Hello"), Pong(b"Hello")]
    assert_healthy(proto)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 65537])
@role_param
def test_receive_length_encodings(role: Role, size: int) -> None:
    payload = bytes(index % 253 for index in range(size))
    proto = make(role)
    assert proto.receive_data(peer_frame(role, BINARY, payload)) == [Binary(payload)]
    assert_healthy(proto)


@pytest.mark.parametrize(
    ("size", "announced"),
    [(5, b"\x7e\x00\x05"), (5, b"\x7f" + struct.pack("!Q", 5)), (300, b"\x7f" + struct.pack("!Q", 300))],
)
def test_receive_accepts_non_minimal_length(size: int, announced: bytes) -> None:
    # RFC 6455 5.2 binds the sender to the minimal encoding; accepting others is the lenient choice.
    proto = client()
    assert proto.receive_data(b"\x82" + announced + b"z" * size) == [Binary(b"z" * size)]


def _stream(role: Role) -> tuple[bytes, list[object]]:
    parts = [
        (peer_frame(role, TEXT, "κόσμε".encode()), Text("κόσμε")),
        (peer_frame(role, BINARY, b"\x00" * 200), Binary(b"\x00" * 200)),
        (peer_frame(role, TEXT, b"\xf0\x9f", fin=False), None),
        (peer_frame(role, PING, b"in-between"), Ping(b"in-between")),
        (peer_frame(role, CONT, b"\x98", fin=False), None),
        (peer_frame(role, PONG), Pong(b"")),
        (peer_frame(role, CONT, b"\x80!"), Text("😀!")),
        (peer_frame(role, BINARY, b"x" * 70000), Binary(b"x" * 70000)),
        (peer_frame(role, CLOSE, b"\x03\xe8done"), Close(1000, "done")),
    ]
    return b"".join(data for data, _ in parts), [event for _, event in parts if event is not None]


@role_param
def test_receive_all_at_once(role: Role) -> None:
    data, events = _stream(role)
    proto = make(role)
    assert proto.receive_data(data) == events


@role_param
def test_receive_one_byte_at_a_time(role: Role) -> None:
    data, events = _stream(role)
    proto = make(role)
    received = []
    for index in range(len(data)):
        received += proto.receive_data(data[index : index + 1])
    assert received == events
    assert proto.state is State.CLOSING and proto.error is None  # the close reply is owed


@role_param
def test_receive_in_odd_chunks(role: Role) -> None:
    data, events = _stream(role)
    proto = make(role)
    received = []
    sizes = itertools.cycle([1, 2, 3, 7, 11, 4096])
    position = 0
    while position < len(data):
        size = next(sizes)
        received += proto.receive_data(data[position : position + size])
        position += size
    assert received == events


def _receive_in_two_steps(proto: Protocol, data: bytes) -> list[object]:
    """What a reader that takes whole messages without the state lock gets (``Connection.feed``)."""
    events, used = proto.receive_messages(data)
    return [*events, *proto.receive_data(data[used:])]


@role_param
@pytest.mark.parametrize("sizes", [[1 << 30], [1], [1, 2, 3, 7, 11, 4096], [5, 300, 9000]])
def test_receive_messages_then_the_rest_matches_receive_data(role: Role, sizes: list[int]) -> None:
    data, events = _stream(role)
    proto = make(role)
    received: list[object] = []
    chunk_sizes = itertools.cycle(sizes)
    position = 0
    while position < len(data):
        size = next(chunk_sizes)
        received += _receive_in_two_steps(proto, data[position : position + size])
        position += size
    assert received == events
    assert proto.state is State.CLOSING and proto.error is None  # the close reply is owed


@role_param
def test_receive_messages_takes_the_whole_messages_before_any_other_frame(role: Role) -> None:
    messages = peer_frame(role, TEXT, b"one") + peer_frame(role, BINARY, b"two" * 100)
    rest = peer_frame(role, PING, b"?") + peer_frame(role, TEXT, b"three")
    proto = make(role)
    assert proto.receive_messages(messages + rest) == ([Text("one"), Binary(b"two" * 100)], len(messages))
    assert proto.receive_data(rest) == [Ping(b"?"), Text("three")]


@pytest.mark.parametrize(
    "before",
    [
        pytest.param(frame(TEXT, b"abcdef")[:3], id="a partial frame buffered"),
        pytest.param(frame(TEXT, b"ab", fin=False), id="a fragmented message going on"),
        pytest.param(frame(CLOSE, b"\x03\xe8"), id="a close received"),
        pytest.param(frame(TEXT, b"\xff"), id="a violation"),
    ],
)
def test_receive_messages_leaves_everything_to_receive_data_unless_idle(before: bytes) -> None:
    proto = client()
    proto.receive_data(before)
    assert proto.receive_messages(frame(BINARY, b"x")) == ([], 0)


def test_receive_messages_leaves_everything_to_receive_data_with_extensions_or_after_eof() -> None:
    assert client(extensions=[_NoopExt()]).receive_messages(frame(BINARY, b"x")) == ([], 0)
    proto = client()
    proto.receive_eof()
    assert proto.receive_messages(frame(BINARY, b"x")) == ([], 0)


def test_partial_frame_yields_nothing_until_complete() -> None:
    proto = client()
    data = frame(TEXT, b"abcdef")
    assert proto.receive_data(data[:1]) == []
    assert proto.receive_data(data[1:4]) == []
    assert proto.receive_data(b"") == []
    assert proto.receive_data(data[4:]) == [Text("abcdef")]
    assert_healthy(proto)


def test_violation_after_a_buffered_partial_frame() -> None:
    # The bytes of the partial frame wait in the buffer; the violation must still fail cleanly.
    proto = client()
    data = frame(TEXT, b"abcdef") + frame(TEXT, b"hi", key=KEY)
    assert proto.receive_data(data[:3]) == []
    assert proto.receive_data(data[3:]) == [Text("abcdef")]
    assert_failed(proto, 1002)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_receive_data_takes_any_bytes_like_and_keeps_no_reference(kind: type) -> None:
    proto = client()
    data = bytearray(frame(BINARY, b"x" * 300) + frame(TEXT, b"abc")[:2])
    assert proto.receive_data(kind(data)) == [Binary(b"x" * 300)]
    data[:] = b"\0" * len(data)  # the caller reuses its buffer
    assert proto.receive_data(frame(TEXT, b"abc")[2:]) == [Text("abc")]
    assert_healthy(proto)


def test_receive_empty_messages_and_empty_fragments() -> None:
    proto = client()
    data = (
        frame(TEXT)
        + frame(BINARY)
        + frame(TEXT, b"", fin=False)
        + frame(CONT, b"", fin=False)
        + frame(CONT, b"a", fin=False)
        + frame(CONT, b"")
    )
    assert proto.receive_data(data) == [Text(""), Binary(b""), Text("a")]
    assert_healthy(proto)


# -- receiving: masking rules -------------------------------------------------------------------


def test_client_refuses_masked_server_frame() -> None:
    proto = client()
    assert proto.receive_data(frame(TEXT, b"hi", key=KEY)) == []
    assert_failed(proto, 1002)


def test_server_refuses_unmasked_client_frame() -> None:
    proto = server()
    assert proto.receive_data(frame(TEXT, b"hi")) == []
    assert_failed(proto, 1002)


@pytest.mark.parametrize("opcode", [PING, CLOSE])
@role_param
def test_masking_rule_applies_to_control_frames(role: Role, opcode: int) -> None:
    proto = make(role)
    wrong_key = None if role is Role.SERVER else KEY
    proto.receive_data(frame(opcode, b"", key=wrong_key))
    assert_failed(proto, 1002)


@role_param
def test_masking_violation_is_refused_from_the_header(role: Role) -> None:
    proto = make(role)
    wrong = frame(BINARY, b"x" * 1000, key=None if role is Role.SERVER else KEY)
    proto.receive_data(wrong[:4])  # header only
    assert_failed(proto, 1002)


# -- receiving: header rules --------------------------------------------------------------------


@pytest.mark.parametrize("rsv", [1, 2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("opcode", [TEXT, BINARY, CONT, PING, CLOSE])
@role_param
def test_reserved_bits_without_extension(role: Role, opcode: int, rsv: int) -> None:
    proto = make(role)
    if opcode == CONT:
        proto.receive_data(peer_frame(role, TEXT, b"a", fin=False))
    assert proto.receive_data(peer_frame(role, opcode, b"", rsv=rsv)) == []
    assert_failed(proto, 1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
@pytest.mark.parametrize("fin", [True, False])
@role_param
def test_unknown_opcode(role: Role, opcode: int, fin: bool) -> None:
    proto = make(role)
    assert proto.receive_data(peer_frame(role, TEXT, b"before") + peer_frame(role, opcode, b"x", fin=fin)) == [
        Text("before")
    ]
    assert_failed(proto, 1002)


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
@role_param
def test_fragmented_control_frame(role: Role, opcode: int) -> None:
    proto = make(role)
    assert proto.receive_data(peer_frame(role, opcode, b"\x03\xe8", fin=False)) == []
    assert_failed(proto, 1002)


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
@role_param
def test_control_frame_payload_limit(role: Role, opcode: int) -> None:
    ok_payload = b"\x03\xe8" + b"r" * 123 if opcode == CLOSE else b"p" * 125
    proto = make(role)
    events = proto.receive_data(peer_frame(role, opcode, ok_payload))
    assert len(events) == 1 and proto.error is None
    proto = make(role)
    # 126 bytes: refused from the 4-byte header alone.
    too_long = peer_frame(role, opcode, b"p" * 126)
    assert proto.receive_data(too_long[:4]) == []
    assert_failed(proto, 1002)


@pytest.mark.parametrize("opcode", [PING, PONG])
@role_param
def test_control_frames_between_fragments(role: Role, opcode: int) -> None:
    proto = make(role)
    data = (
        peer_frame(role, BINARY, b"ab", fin=False)
        + peer_frame(role, opcode, b"1")
        + peer_frame(role, CONT, b"cd", fin=False)
        + peer_frame(role, opcode, b"2")
        + peer_frame(role, CONT, b"ef")
    )
    expected = Ping if opcode == PING else Pong
    assert proto.receive_data(data) == [expected(b"1"), expected(b"2"), Binary(b"abcdef")]
    assert_healthy(proto)


def test_close_between_fragments_ends_connection() -> None:
    proto = client()
    data = frame(TEXT, b"ab", fin=False) + frame(CLOSE, b"\x03\xe8") + frame(CONT, b"cd")
    assert proto.receive_data(data) == [Close(1000, "")]
    assert proto.state is State.CLOSING and proto.error is None


@pytest.mark.parametrize("fin", [True, False])
@role_param
def test_continuation_without_start(role: Role, fin: bool) -> None:
    proto = make(role)
    assert proto.receive_data(peer_frame(role, CONT, b"x", fin=fin)) == []
    assert_failed(proto, 1002)


def test_continuation_after_finished_message() -> None:
    proto = client()
    assert proto.receive_data(frame(TEXT, b"a", fin=False) + frame(CONT, b"b") + frame(CONT, b"c")) == [Text("ab")]
    assert_failed(proto, 1002)


@pytest.mark.parametrize(("first", "second"), [(TEXT, TEXT), (TEXT, BINARY), (BINARY, TEXT), (BINARY, BINARY)])
@role_param
def test_new_data_frame_during_fragmented_message(role: Role, first: int, second: int) -> None:
    proto = make(role)
    assert proto.receive_data(peer_frame(role, first, b"a", fin=False)) == []
    assert proto.receive_data(peer_frame(role, second, b"b")) == []
    assert_failed(proto, 1002)


@role_param
def test_length_with_most_significant_bit(role: Role) -> None:
    proto = make(role, max_size=None)
    header = peer_frame(role, BINARY, length=2**63)[:10]
    assert header[2] == 0x80
    assert proto.receive_data(header) == []
    assert_failed(proto, 1002)


def test_events_before_a_violation_are_returned_and_parsing_stops() -> None:
    proto = client()
    data = frame(TEXT, b"one") + frame(PING, b"p") + frame(0x3) + frame(TEXT, b"never")
    assert proto.receive_data(data) == [Text("one"), Ping(b"p")]
    assert_failed(proto, 1002)
    assert proto.receive_data(frame(TEXT, b"later")) == []
    assert owed_bytes(proto) == b""


def test_queued_close_frame_exact_bytes_after_violation() -> None:
    proto = client()
    proto.receive_data(frame(0xB))
    data = owed_bytes(proto)
    assert data[0] == 0x88
    assert data[1] & 0x80
    length = data[1] & 0x7F
    assert data[2:6] == CLIENT_KEY
    assert len(data) == 6 + length
    payload = xor_mask(data[6:], CLIENT_KEY)
    assert payload[:2] == b"\x03\xea"  # 1002
    assert payload[2:].decode() == str(proto.error)
    assert proto.close_sent == Close(1002, str(proto.error))
    assert isinstance(proto.error, ProtocolError) and not isinstance(proto.error, PayloadTooBig)


def test_queued_close_frame_reason_is_truncated_to_fit() -> None:
    proto = server(max_size=10)
    proto.receive_data(frame(BINARY, length=2**40, key=KEY)[:14])
    sent = only_close(proto)
    assert sent.key is None
    assert sent.payload[:2] == b"\x03\xf1"  # 1009
    assert len(sent.payload) <= 125


@pytest.mark.parametrize(
    "step",
    [
        pytest.param(lambda proto: proto.send(Close(1000)), id="close sent"),
        pytest.param(lambda proto: proto.receive_data(frame(CLOSE, b"\x03\xe8")), id="close received"),
        pytest.param(lambda proto: proto.receive_data(frame(0x3)), id="violation"),
        pytest.param(lambda proto: proto.receive_eof(), id="transport ended"),
    ],
)
def test_closing_turns_true_at_every_way_out_of_open_and_stays(step: object) -> None:
    proto = client()
    proto.receive_data(frame(BINARY, b"x") + frame(PING))
    proto.send(Text("still open"))
    assert proto.closing is False
    step(proto)  # type: ignore[operator]
    assert proto.closing is True
    assert (proto.state is not State.OPEN) or proto.error is not None
    proto.receive_eof()
    assert proto.closing is True


def test_violation_while_closing_queues_nothing() -> None:
    proto = client()
    proto.send(Close(1000))
    assert proto.state is State.CLOSING
    proto.receive_data(frame(0x3))
    assert proto.error is not None and proto.error.close_code == 1002
    assert owed_bytes(proto) == b""
    assert proto.close_sent == Close(1000, "")


# -- receiving: UTF-8 ---------------------------------------------------------------------------


INVALID_UTF8 = [
    b"\xff",
    b"\xfe",
    b"\xc0\xaf",  # overlong "/"
    b"\xe0\x80\xaf",  # overlong
    b"\xed\xa0\x80",  # surrogate U+D800
    b"\xed\xbf\xbf",  # surrogate U+DFFF
    b"\xf4\x90\x80\x80",  # > U+10FFFF
    b"\xf8\x88\x80\x80\x80",  # 5-byte form
    b"\x80",  # lone continuation
    b"\xce\xba\xe1\xbd",  # truncated at end of message
]


@pytest.mark.parametrize("bad", INVALID_UTF8)
@role_param
def test_invalid_utf8_single_frame(role: Role, bad: bytes) -> None:
    proto = make(role)
    assert proto.receive_data(peer_frame(role, TEXT, b"ok" + bad)) == []
    assert_failed(proto, 1007)


@pytest.mark.parametrize("bad", INVALID_UTF8)
def test_invalid_utf8_in_binary_is_fine(bad: bytes) -> None:
    proto = client()
    assert proto.receive_data(frame(BINARY, bad)) == [Binary(bad)]
    assert_healthy(proto)


# Bytes that no continuation can make valid: the first fragment must fail at once.
FAIL_FAST_FIRST_FRAGMENTS = [
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80",  # Autobahn 6.4.1 invalid part
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90",  # invalid second byte at the end
    b"\xff",
    b"abc\xc0",
    b"\xe0\x80",
    b"\xf5",
    b"\x80abc",
    b"\xed\xa0\x80abc",
]


@pytest.mark.parametrize("bad", FAIL_FAST_FIRST_FRAGMENTS)
@role_param
def test_invalid_utf8_in_first_fragment_fails_fast(role: Role, bad: bytes) -> None:
    proto = make(role)
    assert proto.receive_data(peer_frame(role, TEXT, bad, fin=False)) == []
    assert_failed(proto, 1007)


@pytest.mark.parametrize("bad", [b"\xce\xba\xed\xa0", b"\xed\xbf"])
def test_invalid_utf8_surrogate_prefix_at_end_of_first_fragment_fails_fast(bad: bytes) -> None:
    proto = client()
    proto.receive_data(frame(TEXT, bad, fin=False))
    assert proto.error is not None and proto.error.close_code == 1007


@pytest.mark.parametrize(
    "fragments",
    [
        # Autobahn 6.4.1: valid, invalid, valid.
        [b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", b"\xf4\x90\x80\x80", b"edited"],
        # Autobahn 6.4.2: the invalid code point split over the fragment boundary.
        [b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4", b"\x90", b"\x80\x80edited"],
        [b"ok", b"ok\xed", b"\xa0\x80", b"never"],
    ],
)
def test_invalid_utf8_in_middle_fragment_fails_before_the_last(fragments: list[bytes]) -> None:
    proto = client()
    *head, last = fragments
    for index, part in enumerate(head):
        assert proto.receive_data(frame(TEXT if index == 0 else CONT, part, fin=False)) == []
        if proto.error is not None:
            break
    assert_failed(proto, 1007)
    assert proto.receive_data(frame(CONT, last)) == []


@pytest.mark.parametrize("char", ["é", "€", "😀", "\U0010ffff", "\ud7ff", "\ue000"])
@role_param
def test_valid_utf8_split_inside_code_point(role: Role, char: str) -> None:
    encoded = ("a" + char + "b").encode()
    for cut in range(1, len(encoded)):
        proto = make(role)
        assert proto.receive_data(peer_frame(role, TEXT, encoded[:cut], fin=False)) == []
        assert proto.error is None
        assert proto.receive_data(peer_frame(role, CONT, encoded[cut:])) == [Text("a" + char + "b")]
        assert_healthy(proto)


def test_valid_utf8_split_byte_per_fragment() -> None:
    text = "κόσμε😀€"
    data = b"".join(
        frame(TEXT if index == 0 else CONT, bytes([byte]), fin=index == len(text.encode()) - 1)
        for index, byte in enumerate(text.encode())
    )
    proto = client()
    assert proto.receive_data(data) == [Text(text)]
    assert_healthy(proto)


def test_truncated_code_point_at_end_of_fragmented_message() -> None:
    proto = client()
    assert proto.receive_data(frame(TEXT, b"a\xf0\x9f", fin=False)) == []
    assert proto.error is None
    assert proto.receive_data(frame(CONT, b"\x98")) == []
    assert_failed(proto, 1007)


# -- close handshake ----------------------------------------------------------------------------


@pytest.mark.parametrize("code", VALID_CODES)
@role_param
def test_peer_close_is_echoed(role: Role, code: int) -> None:
    proto = make(role)
    events = proto.receive_data(peer_frame(role, CLOSE, struct.pack("!H", code) + "réason".encode()))
    assert events == [Close(code, "réason")]
    assert proto.close_received == Close(code, "réason")
    assert proto.close_code == code and proto.close_reason == "réason"
    assert (proto.state, proto.close_reply()) == (State.CLOSING, Close(code))
    assert proto.closed_by_peer is True
    assert proto.error is None
    sent = only_close(proto)
    assert sent.payload == struct.pack("!H", code)
    assert proto.close_sent is not None and proto.close_sent.code == code
    assert proto.state is State.CLOSED
    assert owed_bytes(proto) == b""


def test_answers_to_messages_before_the_peer_close_go_before_the_close_reply() -> None:
    # Three messages and a close in one read: the application's answers to the messages are
    # encoded before the close reply, which a writer takes afterwards (WebSock's order).
    proto = server()
    data = b"".join(frame(TEXT, text, key=KEY) for text in (b"a", b"b", b"c")) + frame(CLOSE, b"\x03\xe8", key=KEY)
    events = proto.receive_data(data)
    assert events == [Text("a"), Text("b"), Text("c"), Close(1000, "")]
    answers = [proto.send_message(event.data) for event in events[:3]]  # type: ignore[union-attr]
    assert answers == [frame(TEXT, text) for text in (b"a", b"b", b"c")]
    assert owed_bytes(proto) == frame(CLOSE, b"\x03\xe8")
    with pytest.raises(ConnectionClosedOK):
        proto.send_message("too late")


def test_peer_close_echo_exact_bytes_as_client() -> None:
    proto = client()
    proto.receive_data(b"\x88\x02\x03\xe8")
    assert owed_bytes(proto) == b"\x88\x82" + CLIENT_KEY + xor_mask(b"\x03\xe8", CLIENT_KEY)


def test_peer_close_echo_exact_bytes_as_server() -> None:
    proto = server()
    proto.receive_data(frame(CLOSE, b"\x03\xe9bye", key=KEY))
    assert owed_bytes(proto) == b"\x88\x02\x03\xe9"


@role_param
def test_empty_close_is_reported_1005_and_answered_empty(role: Role) -> None:
    proto = make(role)
    assert proto.receive_data(peer_frame(role, CLOSE)) == [Close(1005, "")]
    assert proto.close_code == 1005
    assert proto.close_received == Close(1005, "")
    sent = only_close(proto)
    assert sent.payload == b""
    if role is Role.CLIENT:
        assert sent.key == CLIENT_KEY
    assert proto.state is State.CLOSED


@pytest.mark.parametrize("code", INVALID_CODES)
@role_param
def test_peer_close_with_invalid_code(role: Role, code: int) -> None:
    proto = make(role)
    assert proto.receive_data(peer_frame(role, CLOSE, struct.pack("!H", code))) == []
    assert proto.close_received is None
    assert_failed(proto, 1002)


@pytest.mark.parametrize("payload", [b"\x03", b"\x00", b"\xff"])
@role_param
def test_peer_close_with_one_byte_payload(role: Role, payload: bytes) -> None:
    proto = make(role)
    assert proto.receive_data(peer_frame(role, CLOSE, payload)) == []
    assert_failed(proto, 1002)


@pytest.mark.parametrize("reason", [b"\xff", b"\xce", b"ab\xed\xa0\x80", b"\xc0\xaf"])
@role_param
def test_peer_close_with_invalid_utf8_reason(role: Role, reason: bytes) -> None:
    proto = make(role)
    assert proto.receive_data(peer_frame(role, CLOSE, b"\x03\xe8" + reason)) == []
    assert_failed(proto, 1007)


@role_param
def test_local_close_then_peer_close(role: Role) -> None:
    proto = make(role)
    (sent,) = parse(proto.send(Close(1001, "leaving")))
    assert sent.payload == b"\x03\xe9leaving"
    assert proto.state is State.CLOSING
    assert proto.closed_by_peer is False
    assert proto.close_sent == Close(1001, "leaving")
    # Data still flows while the peer has not answered.
    assert proto.receive_data(peer_frame(role, TEXT, b"late")) == [Text("late")]
    assert proto.receive_data(peer_frame(role, CLOSE, b"\x03\xe9")) == [Close(1001, "")]
    assert state_of(proto) is State.CLOSED
    assert owed_bytes(proto) == b""  # nothing more to answer
    assert proto.closed_by_peer is False
    assert proto.close_code == 1001


def test_local_empty_close() -> None:
    proto = client()
    assert proto.send(Close()) == b"\x88\x80" + CLIENT_KEY
    assert proto.close_sent == Close(1005, "")
    assert proto.receive_data(frame(CLOSE)) == [Close(1005, "")]
    assert proto.state is State.CLOSED and owed_bytes(proto) == b""


def test_frames_after_close_are_ignored() -> None:
    proto = client()
    data = frame(CLOSE, b"\x03\xe8") + frame(TEXT, b"after") + frame(0x3) + frame(PING)
    assert proto.receive_data(data) == [Close(1000, "")]
    assert proto.receive_data(frame(TEXT, b"later") + b"\xff\xff\xff") == []
    assert proto.receive_data(frame(CLOSE, b"\x03\xe9")) == []
    assert proto.error is None
    assert proto.close_code == 1000
    assert len(parse(owed_bytes(proto))) == 1  # a single echo


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (1000, ConnectionClosedOK),
        (1001, ConnectionClosedOK),
        (1002, ConnectionClosedError),
        (1003, ConnectionClosedError),
        (1011, ConnectionClosedError),
        (3000, ConnectionClosedError),
        (4999, ConnectionClosedError),
        (None, ConnectionClosedOK),  # empty close: 1005, a normal end without a code
    ],
)
@pytest.mark.parametrize("value", [Text("x"), Binary(b"x"), Ping(), Pong(), Close(1000)])
def test_send_after_peer_close_raises(code: int | None, cls: type[ConnectionClosed], value: object) -> None:
    proto = client()
    payload = b"" if code is None else struct.pack("!H", code) + b"why"
    proto.receive_data(frame(CLOSE, payload))
    owed_bytes(proto)
    with pytest.raises(cls) as info:
        proto.send(value)  # type: ignore[arg-type]
    assert type(info.value) is cls
    assert info.value.code == (1005 if code is None else code)
    assert info.value.reason == ("" if code is None else "why")
    assert info.value.initiated_by_peer is True
    assert owed_bytes(proto) == b""


@pytest.mark.parametrize(
    ("local", "peer", "cls"),
    [(1000, 1000, ConnectionClosedOK), (1001, 1000, ConnectionClosedOK), (1000, 1011, ConnectionClosedError)],
)
def test_send_after_completed_local_close_raises(local: int, peer: int, cls: type[ConnectionClosed]) -> None:
    proto = client()
    proto.send(Close(local))
    proto.receive_data(frame(CLOSE, struct.pack("!H", peer)))
    with pytest.raises(cls) as info:
        proto.send(Text("x"))
    assert info.value.code == peer
    assert info.value.initiated_by_peer is False


def test_send_while_closing_reports_our_close_code() -> None:
    proto = client()
    proto.send(Close(1000, "bye"))
    with pytest.raises(ConnectionClosedOK) as info:
        proto.send(Text("x"))
    assert info.value.code == 1000


def test_send_while_closing_raises_connection_closed() -> None:
    proto = client()
    proto.send(Close(1000))
    with pytest.raises(ConnectionClosed):
        proto.send(Text("x"))
    with pytest.raises(ConnectionClosed):
        proto.send(Close(1000))


@pytest.mark.parametrize(
    ("bad", "code"),
    [(frame(0x3), 1002), (frame(TEXT, b"\xff"), 1007), (frame(BINARY, length=DEFAULT_MAX_SIZE + 1)[:10], 1009)],
)
def test_send_after_failure_raises_error_with_its_code(bad: bytes, code: int) -> None:
    proto = client()
    proto.receive_data(bad)
    # Until the failing close is taken, answers to earlier messages may still go out first
    # (Autobahn's strict behaviour); once it is taken, sending is refused with the error's code.
    [answer] = parse(proto.send(Text("answer")))
    assert answer.opcode == TEXT and answer.payload == b"answer"
    assert [sent.opcode for sent in parse(owed_bytes(proto))] == [0x8]
    with pytest.raises(ConnectionClosedError) as info:
        proto.send(Text("x"))
    assert info.value.code == code
    exc = proto.closed_exception()
    assert type(exc) is ConnectionClosedError and exc.code == code and exc.reason == str(proto.error)


# -- max_size -----------------------------------------------------------------------------------


def test_default_max_size() -> None:
    assert DEFAULT_MAX_SIZE == 2**20
    assert client().max_size == 2**20


@role_param
def test_max_size_exact_is_accepted(role: Role) -> None:
    proto = make(role)
    payload = b"m" * 2**20
    assert proto.receive_data(peer_frame(role, BINARY, payload)) == [Binary(payload)]
    assert_healthy(proto)


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
@role_param
def test_max_size_exceeded_refused_from_header(role: Role, opcode: int) -> None:
    proto = make(role)
    header = peer_frame(role, opcode, length=2**20 + 1)[:10]
    assert proto.receive_data(header) == []
    assert isinstance(proto.error, PayloadTooBig)
    assert_failed(proto, 1009)


@pytest.mark.parametrize("length", [2**63 - 1, 2**32, 2**20 + 1])
@role_param
def test_huge_length_refused_from_header(role: Role, length: int) -> None:
    proto = make(role)
    header = peer_frame(role, BINARY, length=length)[:10]  # no mask key, no payload yet
    assert proto.receive_data(header) == []
    assert isinstance(proto.error, PayloadTooBig)
    assert_failed(proto, 1009)


@pytest.mark.parametrize(("max_size", "size", "ok"), [(10, 10, True), (10, 11, False), (0, 0, True), (0, 1, False)])
def test_custom_max_size_single_frame(max_size: int, size: int, ok: bool) -> None:
    proto = client(max_size=max_size)
    data = frame(TEXT, b"t" * size)
    if ok:
        assert proto.receive_data(data) == [Text("t" * size)]
        assert_healthy(proto)
    else:
        assert proto.receive_data(data[:2]) == []  # refused from the header
        assert_failed(proto, 1009)


def test_max_size_counts_the_whole_fragmented_message() -> None:
    proto = client(max_size=10)
    assert proto.receive_data(frame(TEXT, b"12345", fin=False)) == []
    assert proto.receive_data(frame(PING, b"p" * 100)) == [Ping(b"p" * 100)]  # control frames do not count
    assert proto.receive_data(frame(CONT, b"1234", fin=False)) == []
    assert proto.error is None
    # 5 + 4 + 2 = 11 > 10: refused from the continuation's header alone.
    assert proto.receive_data(frame(CONT, b"ab")[:2]) == []
    assert_failed(proto, 1009)


def test_max_size_fragmented_exact_is_accepted() -> None:
    proto = client(max_size=10)
    data = frame(BINARY, b"12345", fin=False) + frame(CONT, b"67890")
    assert proto.receive_data(data) == [Binary(b"1234567890")]


def test_max_size_none_is_unlimited() -> None:
    proto = client(max_size=None)
    payload = b"u" * (2**20 + 1)
    assert proto.receive_data(frame(BINARY, payload)) == [Binary(payload)]
    assert proto.receive_data(frame(BINARY, length=2**63 - 1)[:10]) == []
    assert_healthy(proto)


def test_max_size_resets_between_messages() -> None:
    proto = client(max_size=4)
    data = frame(TEXT, b"ab", fin=False) + frame(CONT, b"cd") + frame(TEXT, b"ef", fin=False) + frame(CONT, b"gh")
    assert proto.receive_data(data) == [Text("abcd"), Text("efgh")]
    assert_healthy(proto)


# -- end of stream and closed_exception ---------------------------------------------------------


@role_param
def test_receive_eof_without_close(role: Role) -> None:
    proto = make(role)
    proto.receive_data(peer_frame(role, TEXT, b"partial")[:3])
    proto.receive_eof()
    assert proto.state is State.CLOSED
    assert proto.close_code == 1006
    assert proto.close_reason == ""
    exc = proto.closed_exception()
    assert type(exc) is ConnectionClosedError
    assert exc.code == 1006
    assert proto.receive_data(peer_frame(role, TEXT, b"x")) == []
    with pytest.raises(ConnectionClosedError) as info:
        proto.send(Text("x"))
    assert info.value.code == 1006
    assert owed_bytes(proto) == b""


def test_receive_eof_after_local_close_is_abnormal() -> None:
    proto = client()
    proto.send(Close(1000))
    proto.receive_eof()
    assert proto.state is State.CLOSED
    assert proto.close_code == 1006
    assert type(proto.closed_exception()) is ConnectionClosedError


@pytest.mark.parametrize(
    ("code", "cls"), [(1000, ConnectionClosedOK), (1001, ConnectionClosedOK), (1003, ConnectionClosedError)]
)
def test_receive_eof_after_close_handshake_keeps_the_code(code: int, cls: type) -> None:
    proto = client()
    proto.receive_data(frame(CLOSE, struct.pack("!H", code) + b"r"))
    proto.receive_eof()
    assert proto.close_code == code
    exc = proto.closed_exception()
    assert type(exc) is cls and exc.code == code and exc.reason == "r"
    assert exc.initiated_by_peer is True


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (1000, ConnectionClosedOK),
        (1001, ConnectionClosedOK),
        (1002, ConnectionClosedError),
        (1003, ConnectionClosedError),
        (1007, ConnectionClosedError),
        (1008, ConnectionClosedError),
        (1009, ConnectionClosedError),
        (1010, ConnectionClosedError),
        (1011, ConnectionClosedError),
        (1012, ConnectionClosedError),
        (1013, ConnectionClosedError),
        (1014, ConnectionClosedError),
        (3000, ConnectionClosedError),
        (4000, ConnectionClosedError),
        (4999, ConnectionClosedError),
    ],
)
def test_closed_exception_class(code: int, cls: type) -> None:
    proto = server()
    proto.receive_data(frame(CLOSE, struct.pack("!H", code) + b"because", key=KEY))
    exc = proto.closed_exception()
    assert type(exc) is cls
    assert isinstance(exc, ConnectionClosed)
    assert (exc.code, exc.reason, exc.initiated_by_peer) == (code, "because", True)
    assert str(code) in str(exc)


def test_closed_exception_on_open_connection_is_1006() -> None:
    exc = client().closed_exception()
    assert type(exc) is ConnectionClosedError and exc.code == 1006 and exc.initiated_by_peer is None


# -- data_to_send and state ---------------------------------------------------------------------


@role_param
def test_initial_state(role: Role) -> None:
    proto = make(role)
    assert proto.role is role
    assert proto.state is State.OPEN
    assert proto.close_sent is None and proto.close_received is None
    assert proto.error is None and proto.closed_by_peer is None
    assert owed_bytes(proto) == b""


def test_send_does_not_queue_in_data_to_send() -> None:
    proto = client()
    proto.send(Text("x"))
    proto.send(Close(1000))
    assert owed_bytes(proto) == b""


def test_ping_is_returned_not_auto_answered() -> None:
    # The core leaves the pong to its caller; data_to_send() only carries close replies.
    proto = client()
    assert proto.receive_data(frame(PING, b"hb")) == [Ping(b"hb")]
    assert owed_bytes(proto) == b""
    assert parse(proto.send(Pong(b"hb")))[0].payload == b"hb"


# -- extensions and RSV1 ------------------------------------------------------------------------


class _Rsv1Ext(Extension):
    """A toy extension that claims RSV1 and strips it, upper-casing on the way in."""

    name = "x-test"
    rsv1 = True

    def __init__(self) -> None:
        self.decoded: list[WireFrame] = []

    def decode(self, frame: WireFrame, *, max_size: int | None) -> WireFrame:
        self.decoded.append(WireFrame(frame.opcode, frame.payload, frame.fin, frame.rsv1))
        if frame.rsv1:
            return WireFrame(frame.opcode, frame.payload.upper(), frame.fin)
        return frame

    def encode(self, frame: WireFrame) -> WireFrame:
        return WireFrame(frame.opcode, frame.payload, frame.fin, rsv1=frame.opcode != 0)


class _NoopExt(Extension):
    name = "x-noop"

    def decode(self, frame: WireFrame, *, max_size: int | None) -> WireFrame:
        return frame

    def encode(self, frame: WireFrame) -> WireFrame:
        return frame


def test_rsv1_allowed_with_extension_that_claims_it() -> None:
    ext = _Rsv1Ext()
    proto = client(extensions=[ext])
    data = frame(TEXT, b"ab", rsv=4, fin=False) + frame(PING, b"p") + frame(CONT, b"cd")
    assert proto.receive_data(data) == [Ping(b"p"), Text("ABcd")]  # the toy only transforms RSV1 frames
    assert [f.opcode for f in ext.decoded] == [TEXT, CONT]  # control frames bypass extensions
    assert_healthy(proto)
    (sent,) = parse(proto.send(Text("hi")))
    assert sent.rsv == 4 and sent.payload == b"hi"
    (sent,) = parse(proto.send(Ping(b"p")))
    assert sent.rsv == 0


@pytest.mark.parametrize("rsv", [2, 1, 6])
def test_rsv2_rsv3_refused_even_with_rsv1_extension(rsv: int) -> None:
    proto = client(extensions=[_Rsv1Ext()])
    proto.receive_data(frame(TEXT, b"x", rsv=rsv))
    assert_failed(proto, 1002)


def test_rsv1_refused_when_extension_does_not_claim_it() -> None:
    proto = client(extensions=[_NoopExt()])
    proto.receive_data(frame(TEXT, b"x", rsv=4))
    assert_failed(proto, 1002)


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
def test_rsv1_on_control_frame_refused_with_rsv1_extension(opcode: int) -> None:
    proto = client(extensions=[_Rsv1Ext()])
    proto.receive_data(frame(opcode, b"\x03\xe8", rsv=4))
    assert proto.error is not None and proto.error.close_code == 1002


@pytest.mark.parametrize("role", [Role.CLIENT, Role.SERVER])
def test_invalid_utf8_fails_before_its_frame_is_whole(role: Role) -> None:
    """Autobahn 6.4.3/6.4.4: one frame arriving in pieces fails at the piece with the bad byte."""
    payload = "κόσμε".encode() + b"\xf4\x90\x80\x80" + b"-edited-" * 4
    wire = peer_frame(role, TEXT, payload)
    proto = Protocol(role)
    bad_at = len(wire) - len(payload) + len("κόσμε".encode()) + 1  # after the first bad byte
    assert proto.receive_data(wire[: bad_at - 1]) == [] and proto.error is None
    assert proto.receive_data(wire[bad_at - 1 : bad_at + 1]) == []
    assert proto.error is not None and proto.error.close_code == 1007


@pytest.mark.parametrize("role", [Role.CLIENT, Role.SERVER])
def test_valid_utf8_arriving_in_pieces_of_one_frame(role: Role) -> None:
    text = "ünïcödé ✓ " * 40
    wire = peer_frame(role, CONT, text[200:].encode())
    first = peer_frame(role, TEXT, text[:200].encode(), fin=False)
    proto = Protocol(role)
    events = []
    for piece in [first[i : i + 3] for i in range(0, len(first), 3)] + [
        wire[i : i + 5] for i in range(0, len(wire), 5)
    ]:
        events += proto.receive_data(piece)
    assert proto.error is None and events == [Text(text)]


def test_queued_control_frames_go_out_with_the_replies() -> None:
    proto = client()
    proto.queue_control(Pong(b"late"))
    proto.queue_control(Ping(b"ka"))
    assert proto.replies == [Pong(b"late"), Ping(b"ka")]
    sent = parse(owed_bytes(proto))
    assert [(frame.opcode, frame.payload) for frame in sent] == [(PONG, b"late"), (PING, b"ka")]
    assert owed_bytes(proto) == b"" and proto.replies == []
    proto.send(Close(1000))
    with pytest.raises(ConnectionClosed):
        proto.queue_control(Pong(b"after close"))


# -- after a violation ----------------------------------------------------------------------------


def test_after_a_refused_frame_the_peers_close_is_found_behind_its_payload() -> None:
    # A 2 KiB message against max_size=1000 is refused from its header (1009); its payload still
    # comes, then the peer's answer to our close: the protocol skips the one and sees the other.
    proto = Protocol(Role.SERVER, max_size=1000)
    big = frame(BINARY, b"\x00" * 2048, key=KEY)
    assert proto.receive_data(big[:100]) == []
    assert_failed(proto, 1009)
    assert not proto.failure_acknowledged
    proto.receive_data(big[100:1500])
    assert not proto.failure_acknowledged
    proto.receive_data(big[1500:] + frame(TEXT, b"more", key=KEY) + frame(CLOSE, b"\x03\xf1", key=KEY)[:3])
    assert not proto.failure_acknowledged
    proto.receive_data(frame(CLOSE, b"\x03\xf1", key=KEY)[3:])
    assert proto.failure_acknowledged


def test_after_a_malformed_frame_its_length_still_leads_to_the_peers_close() -> None:
    proto = Protocol(Role.SERVER)
    proto.receive_data(frame(TEXT, b"x") + frame(CLOSE, b"\x03\xe8", key=KEY)[:4])  # unmasked: 1002
    assert_failed(proto, 1002)
    assert not proto.failure_acknowledged
    proto.receive_data(frame(CLOSE, b"\x03\xe8", key=KEY)[4:])
    assert proto.failure_acknowledged


def test_a_refused_close_frame_is_the_peers_answer_already() -> None:
    proto = Protocol(Role.SERVER)
    proto.receive_data(frame(CLOSE, b"\x07\xd0", key=KEY))  # code 2000 may not be sent: 1002
    assert_failed(proto, 1002)
    assert proto.failure_acknowledged


def test_a_length_with_its_top_bit_set_cannot_be_followed() -> None:
    proto = Protocol(Role.SERVER)
    proto.receive_data(b"\x82\xff" + b"\x80" + b"\x00" * 7 + KEY)
    assert_failed(proto, 1002)
    proto.receive_data(frame(CLOSE, b"\x03\xe8", key=KEY))
    assert not proto.failure_acknowledged
