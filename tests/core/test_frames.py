"""Byte-level tests of websync.core.frames: opcodes, close codes, masking, headers, close payloads."""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Callable
from functools import partial

import pytest

from websync.core import frames
from websync.core.errors import ProtocolError
from websync.core.frames import (
    Binary,
    Close,
    CloseCode,
    Frame,
    Opcode,
    Ping,
    Pong,
    Text,
    WireFrame,
    apply_mask_python,
    close_payload,
    encode_frame_python,
    is_valid_close_code,
    pack_header,
    parse_close_payload,
    parse_header_python,
    parse_messages_python,
)

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]
INVALID_CODES = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


def xor_mask(data: bytes, key: bytes) -> bytes:
    """Reference masking (RFC 6455 5.3), independent of apply_mask."""
    return bytes(byte ^ key[index % 4] for index, byte in enumerate(data))


# -- opcodes and close codes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opcode", "value", "control"),
    [
        (Opcode.CONTINUATION, 0x0, False),
        (Opcode.TEXT, 0x1, False),
        (Opcode.BINARY, 0x2, False),
        (Opcode.CLOSE, 0x8, True),
        (Opcode.PING, 0x9, True),
        (Opcode.PONG, 0xA, True),
    ],
)
def test_opcode_values(opcode: Opcode, value: int, control: bool) -> None:
    assert int(opcode) == value
    assert opcode.is_control is control


def test_only_rfc_opcodes_defined() -> None:
    assert sorted(int(op) for op in Opcode) == [0x0, 0x1, 0x2, 0x8, 0x9, 0xA]


@pytest.mark.parametrize(
    ("code", "value"),
    [
        (CloseCode.NORMAL, 1000),
        (CloseCode.GOING_AWAY, 1001),
        (CloseCode.PROTOCOL_ERROR, 1002),
        (CloseCode.UNSUPPORTED_DATA, 1003),
        (CloseCode.NO_STATUS, 1005),
        (CloseCode.ABNORMAL, 1006),
        (CloseCode.INVALID_DATA, 1007),
        (CloseCode.POLICY_VIOLATION, 1008),
        (CloseCode.MESSAGE_TOO_BIG, 1009),
        (CloseCode.MANDATORY_EXTENSION, 1010),
        (CloseCode.INTERNAL_ERROR, 1011),
        (CloseCode.SERVICE_RESTART, 1012),
        (CloseCode.TRY_AGAIN_LATER, 1013),
        (CloseCode.BAD_GATEWAY, 1014),
        (CloseCode.TLS_HANDSHAKE, 1015),
    ],
)
def test_close_code_values(code: CloseCode, value: int) -> None:
    assert code == value


@pytest.mark.parametrize("code", VALID_CODES)
def test_valid_close_codes(code: int) -> None:
    assert is_valid_close_code(code) is True


@pytest.mark.parametrize("code", INVALID_CODES)
def test_invalid_close_codes(code: int) -> None:
    assert is_valid_close_code(code) is False


def test_close_code_ranges_exhaustive() -> None:
    valid = {code for code in range(70000) if is_valid_close_code(code)}
    assert valid == {1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)}


# -- frame values -------------------------------------------------------------------------------


def test_frame_value_defaults_and_equality() -> None:
    assert Ping() == Ping(b"") and Pong() == Pong(b"")
    assert Close() == Close(None, "")
    assert Text("a") == Text("a") and Text("a") != Text("b")
    assert Binary(b"a") != Text("a")  # type: ignore[comparison-overlap]
    wire = WireFrame(Opcode.TEXT, b"x")
    assert (wire.fin, wire.rsv1, wire.rsv2, wire.rsv3) == (True, False, False, False)


@pytest.mark.parametrize("value", [Text("a"), Binary(b"a"), Ping(b"a"), Pong(b"a"), Close(1000, "a")])
def test_frame_values_are_frozen(value: object) -> None:
    field = dataclasses.fields(value)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field, None)


# -- masking ------------------------------------------------------------------------------------


BytesLike = bytes | bytearray | memoryview
MaskFunction = Callable[[BytesLike, BytesLike], bytes]


def _both_paths(name: str, python_function: object) -> list[object]:
    """The pure-Python path always; the C accelerator's ``name`` when it was built (skipped otherwise)."""
    try:
        from websync.core import _speedups
    except ImportError:
        c_param = pytest.param(None, id="c", marks=pytest.mark.skip(reason="websync.core._speedups not compiled"))
    else:
        c_param = pytest.param(getattr(_speedups, name), id="c")
    return [pytest.param(python_function, id="python"), c_param]


@pytest.fixture(params=_both_paths("apply_mask", apply_mask_python))
def apply_mask(request: pytest.FixtureRequest) -> MaskFunction:
    function: MaskFunction = request.param
    return function


@pytest.mark.parametrize(
    ("name", "python_function"),
    [("apply_mask", apply_mask_python), ("encode_frame", encode_frame_python), ("parse_header", parse_header_python)],
)
def test_the_accelerator_is_used_when_built(name: str, python_function: object) -> None:
    assert getattr(frames, name) is _expected_path(name, python_function)


def _expected_path(name: str, python_function: object) -> object:
    """What websync.core.frames should use for ``name``: the C function unless it was not built or is turned off."""
    try:
        from websync.core import _speedups
    except ImportError:
        return python_function
    return python_function if os.environ.get("WEBSYNC_PURE_PYTHON") else getattr(_speedups, name)


def test_apply_mask_rfc_example(apply_mask: MaskFunction) -> None:
    # RFC 6455 5.7: "Hello" masked with 37 fa 21 3d.
    assert apply_mask(b"Hello", b"\x37\xfa\x21\x3d") == b"\x7f\x9f\x4d\x51\x58"
    assert apply_mask(b"\x7f\x9f\x4d\x51\x58", b"\x37\xfa\x21\x3d") == b"Hello"


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 125, 126, 1000, 65536 + 3])
@pytest.mark.parametrize("key", [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x01\x02\x03\x04", b"\x80\x00\x00\x01"])
def test_apply_mask_matches_reference(apply_mask: MaskFunction, size: int, key: bytes) -> None:
    data = bytes((index * 7 + 3) % 256 for index in range(size))
    masked = apply_mask(data, key)
    assert masked == xor_mask(data, key)
    assert len(masked) == size
    assert apply_mask(masked, key) == data


def test_apply_mask_takes_any_bytes_like(apply_mask: MaskFunction) -> None:
    data = bytes(range(256)) * 3
    expected = xor_mask(data[5:700], b"\x01\x02\x03\x04")
    assert apply_mask(memoryview(data)[5:700], b"\x01\x02\x03\x04") == expected
    assert apply_mask(bytearray(data[5:700]), b"\x01\x02\x03\x04") == expected
    assert apply_mask(data[5:700], memoryview(b"\x00\x01\x02\x03\x04")[1:]) == expected


def test_apply_mask_keeps_leading_and_trailing_zero_bytes(apply_mask: MaskFunction) -> None:
    # Integer-based XOR must not drop zero bytes at either end.
    assert apply_mask(b"\x00\x00\x00", b"\x00\x00\x00\x00") == b"\x00\x00\x00"
    assert apply_mask(b"\x01\x00\x00\x00\x00", b"\x01\x00\x00\x00") == b"\x00\x00\x00\x00\x01"
    assert apply_mask(b"\x00\x00\x00\x00\x00", b"\x00\x00\x00\x09") == b"\x00\x00\x00\x09\x00"


# -- headers ------------------------------------------------------------------------------------


EncodeFunction = Callable[[int, BytesLike, "bytes | None"], bytes]
ParseFunction = Callable[[bytes, int], "tuple[int, int, int, int] | None"]


@pytest.fixture(params=_both_paths("encode_frame", encode_frame_python))
def encode_frame(request: pytest.FixtureRequest) -> EncodeFunction:
    function: EncodeFunction = request.param
    return function


@pytest.fixture(params=_both_paths("parse_header", parse_header_python))
def parse_header(request: pytest.FixtureRequest) -> ParseFunction:
    function: ParseFunction = request.param
    return function


def reference_frame(first: int, payload: bytes, key: bytes | None) -> bytes:
    """RFC 6455 5.2 byte by byte, independent of websync's encoders."""
    mask_bit = 0 if key is None else 0x80
    if len(payload) < 126:
        header = bytes([first, mask_bit | len(payload)])
    elif len(payload) < 65536:
        header = bytes([first, mask_bit | 126]) + len(payload).to_bytes(2, "big")
    else:
        header = bytes([first, mask_bit | 127]) + len(payload).to_bytes(8, "big")
    return header if key is None else header + key + xor_mask(payload, key)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70001])
@pytest.mark.parametrize("key", [None, b"\x00\x00\x00\x00", b"\x81\x02\xfe\x04"])
@pytest.mark.parametrize("first", [0x81, 0x82, 0x02, 0xC1, 0x89])
def test_encode_frame_matches_reference(encode_frame: EncodeFunction, size: int, key: bytes | None, first: int) -> None:
    payload = bytes((index * 13 + 5) % 256 for index in range(size))
    expected = reference_frame(first, payload, key)
    if key is None:
        expected += payload
    assert encode_frame(first, payload, key) == expected
    assert encode_frame(first, memoryview(bytearray(payload)), key) == expected


def test_encode_frame_refuses_a_bad_key(encode_frame: EncodeFunction) -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        encode_frame(0x82, b"data", b"\x01\x02\x03")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 2**63 - 1, 2**64 - 1])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("offset", [0, 3])
def test_parse_header_reads_every_length_form(
    parse_header: ParseFunction, size: int, masked: bool, offset: int
) -> None:
    key = b"\x01\x02\x03\x04" if masked else None
    header = reference_frame(0x82, b"", key)[:2]  # first byte and mask bit, length patched below
    if size < 126:
        header = bytes([0x82, header[1] | size])
    elif size < 65536:
        header = bytes([0x82, header[1] | 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x82, header[1] | 127]) + size.to_bytes(8, "big")
    data = b"\xaa" * offset + header + (key or b"") + b"payload"
    start = offset + len(header) + (4 if masked else 0)
    assert parse_header(data, offset) == (0x82, data[offset + 1], start, size)
    # Every cut before the header (and mask key length bytes) is complete says "not yet".
    for cut in range(offset, offset + len(header)):
        assert parse_header(data[:cut], offset) is None


@pytest.mark.parametrize(
    ("length", "length_bytes"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (125, b"\x7d"),
        (126, b"\x7e" + struct.pack("!H", 126)),
        (127, b"\x7e" + struct.pack("!H", 127)),
        (65535, b"\x7e" + struct.pack("!H", 65535)),
        (65536, b"\x7f" + struct.pack("!Q", 65536)),
        (65537, b"\x7f" + struct.pack("!Q", 65537)),
    ],
)
@pytest.mark.parametrize("mask", [False, True])
def test_pack_header_lengths(length: int, length_bytes: bytes, mask: bool) -> None:
    header = pack_header(0x82, 0x80 if mask else 0, length)
    expected_second = length_bytes[0] | (0x80 if mask else 0)
    assert header == bytes([0x82, expected_second]) + length_bytes[1:]


@pytest.mark.parametrize(
    ("fin", "rsv1", "rsv2", "rsv3", "first"),
    [
        (True, False, False, False, 0x81),
        (False, False, False, False, 0x01),
        (True, True, False, False, 0xC1),
        (True, False, True, False, 0xA1),
        (True, False, False, True, 0x91),
        (False, True, True, True, 0x71),
    ],
)
def test_first_byte_carries_the_flags(fin: bool, rsv1: bool, rsv2: bool, rsv3: bool, first: int) -> None:
    frame = WireFrame(Opcode.TEXT, b"ab", fin=fin, rsv1=rsv1, rsv2=rsv2, rsv3=rsv3)
    assert frame.first_byte == first


@pytest.mark.parametrize("opcode", list(Opcode))
def test_first_byte_carries_the_opcode(opcode: Opcode) -> None:
    assert pack_header(WireFrame(opcode, b"").first_byte, 0x80, 0) == bytes([0x80 | opcode, 0x80])


# -- whole messages -----------------------------------------------------------------------------


MessagesFunction = Callable[[BytesLike, int, "int | None", bool, "list[Frame]"], int]


@pytest.fixture(params=_both_paths("parse_messages", parse_messages_python))
def parse_messages(request: pytest.FixtureRequest) -> MessagesFunction:
    function: Callable[..., int] = request.param
    if function is parse_messages_python:
        return parse_messages_python
    return partial(function, Text, Binary)


def test_parse_messages_uses_the_accelerator_when_built() -> None:
    expected = _expected_path("parse_messages", parse_messages_python)
    used = frames.parse_messages
    assert used is expected or (isinstance(used, partial) and used.func is expected and used.args == (Text, Binary))


KEY = b"\x81\x02\xfe\x04"
MESSAGES: list[Text | Binary] = [Text(""), Binary(b"\x00\xff"), Text("é" * 100), Binary(bytes(range(256)) * 300)]


def wire_frame(first: int, payload: bytes, key: bytes | None) -> bytes:
    """A whole frame with its payload, per RFC 6455 5.2 (see reference_frame)."""
    return reference_frame(first, payload, key) + (payload if key is None else b"")


def message_frame(value: Text | Binary, key: bytes | None) -> bytes:
    if isinstance(value, Text):
        return wire_frame(0x81, value.data.encode(), key)
    return wire_frame(0x82, value.data, key)


@pytest.mark.parametrize("key", [None, KEY])
def test_parse_messages_takes_whole_messages_of_every_length(
    parse_messages: MessagesFunction, key: bytes | None
) -> None:
    wire = b"".join(message_frame(value, key) for value in MESSAGES)
    events: list[Frame] = [Binary(b"before")]
    assert parse_messages(memoryview(b"xy" + wire), 2, None, key is not None, events) == 2 + len(wire)
    assert events == [Binary(b"before"), *MESSAGES]
    data_types = [type(event.data) for event in events if isinstance(event, (Text, Binary))]
    assert data_types == [bytes, str, bytes, str, bytes]


@pytest.mark.parametrize("key", [None, KEY])
def test_parse_messages_stops_where_a_frame_is_incomplete(parse_messages: MessagesFunction, key: bytes | None) -> None:
    first = message_frame(Binary(b"one"), key)
    second = message_frame(Text("two" * 50), key)  # a 16-bit length: every header cut is tried
    for cut in range(len(second)):
        events: list[Frame] = []
        assert parse_messages(first + second[:cut], 0, None, key is not None, events) == len(first)
        assert events == [Binary(b"one")]


@pytest.mark.parametrize(
    ("name", "frame"),
    [
        ("ping", wire_frame(0x89, b"?", None)),
        ("close", wire_frame(0x88, b"\x03\xe8", None)),
        ("not final", wire_frame(0x02, b"part", None)),
        ("continuation", wire_frame(0x80, b"end", None)),
        ("rsv1", wire_frame(0xC2, b"deflated", None)),
        ("rsv3", wire_frame(0x91, b"x", None)),
        ("masked", wire_frame(0x82, b"x", KEY)),
        ("invalid UTF-8", wire_frame(0x81, b"\xff", None)),
        ("a surrogate", wire_frame(0x81, b"\xed\xa0\x80", None)),
        ("over max_size", wire_frame(0x82, b"x" * 11, None)),
    ],
)
def test_parse_messages_leaves_every_other_frame_to_the_general_path(
    parse_messages: MessagesFunction, name: str, frame: bytes
) -> None:
    before = wire_frame(0x82, b"x" * 10, None)
    events: list[Frame] = []
    assert parse_messages(before + frame + before, 0, 10, False, events) == len(before), name
    assert events == [Binary(b"x" * 10)]


def test_parse_messages_wants_masked_frames_when_told(parse_messages: MessagesFunction) -> None:
    events: list[Frame] = []
    assert parse_messages(wire_frame(0x82, b"x", None), 0, None, True, events) == 0
    assert events == []


def test_parse_messages_values_are_like_any_other(parse_messages: MessagesFunction) -> None:
    events: list[Frame] = []
    parse_messages(wire_frame(0x81, b"hi", None) + wire_frame(0x82, b"yo", None), 0, None, False, events)
    text, binary = events
    assert isinstance(text, Text)
    assert hash(text) == hash(Text("hi")) and repr(binary) == "Binary(data=b'yo')"
    with pytest.raises(dataclasses.FrozenInstanceError):
        text.data = "changed"  # type: ignore[misc]


# -- close payloads -----------------------------------------------------------------------------


def test_close_payload_empty() -> None:
    assert close_payload(None, "") == b""


def test_close_payload_reason_without_code() -> None:
    with pytest.raises(ValueError):
        close_payload(None, "bye")


@pytest.mark.parametrize("code", VALID_CODES)
def test_close_payload_valid_code(code: int) -> None:
    assert close_payload(code, "") == struct.pack("!H", code)
    assert close_payload(code, "é") == struct.pack("!H", code) + b"\xc3\xa9"


@pytest.mark.parametrize("code", INVALID_CODES)
def test_close_payload_invalid_code(code: int) -> None:
    with pytest.raises(ValueError):
        close_payload(code, "")


@pytest.mark.parametrize(
    ("reason", "ok"),
    [("a" * 123, True), ("a" * 124, False), ("é" * 61 + "a", True), ("é" * 62, False)],
)
def test_close_payload_reason_limit_in_bytes(reason: str, ok: bool) -> None:
    if ok:
        payload = close_payload(1000, reason)
        assert len(payload) <= 125 and payload[2:].decode() == reason
    else:
        with pytest.raises(ValueError):
            close_payload(1000, reason)


def test_parse_close_payload_empty_is_1005() -> None:
    close = parse_close_payload(b"")
    assert close == Close(1005, "")


@pytest.mark.parametrize("code", VALID_CODES)
def test_parse_close_payload_valid(code: int) -> None:
    assert parse_close_payload(struct.pack("!H", code) + "κόσμε".encode()) == Close(code, "κόσμε")


@pytest.mark.parametrize("code", INVALID_CODES)
def test_parse_close_payload_invalid_code(code: int) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_close_payload(struct.pack("!H", code))
    assert info.value.close_code == 1002


@pytest.mark.parametrize("payload", [b"\x03", b"\xe8"])
def test_parse_close_payload_one_byte(payload: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_close_payload(payload)
    assert info.value.close_code == 1002


@pytest.mark.parametrize("reason", [b"\xff", b"\xce", b"\xed\xa0\x80", b"ok\xc0\xaf", b"\xf4\x90\x80\x80"])
def test_parse_close_payload_invalid_utf8(reason: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_close_payload(b"\x03\xe8" + reason)
    assert info.value.close_code == 1007
