"""Frame values for users, the wire frame, masking and close-code rules (RFC 6455 section 5)."""

from __future__ import annotations

import enum
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from .errors import ProtocolError

__all__ = [
    "Opcode",
    "Text",
    "Binary",
    "Ping",
    "Pong",
    "Close",
    "Frame",
    "as_frame",
    "Outgoing",
    "WireFrame",
    "CloseCode",
    "apply_mask",
    "apply_mask_python",
    "encode_frame",
    "encode_frame_python",
    "parse_header",
    "parse_header_python",
    "parse_messages",
    "parse_messages_python",
    "pack_header",
    "is_valid_close_code",
    "parse_close_payload",
    "close_payload",
]


class Opcode(enum.IntEnum):
    """Frame opcodes of RFC 6455 section 5.2."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA

    @property
    def is_control(self) -> bool:
        return self >= 0x8


class CloseCode(enum.IntEnum):
    """Close codes of RFC 6455 section 7.4.1 and the IANA registry."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005
    ABNORMAL = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


# Codes a peer may put in a close frame: registered codes minus those reserved for local use
# (1004 reserved, 1005/1006/1015 never sent), plus the ranges for libraries and applications.
_SENDABLE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def is_valid_close_code(code: int) -> bool:
    """True when ``code`` may appear in a close frame on the wire."""
    return code in _SENDABLE_CODES or 3000 <= code <= 4999


@dataclass(frozen=True, slots=True)
class Text:
    """A text message."""

    data: str


@dataclass(frozen=True, slots=True)
class Binary:
    """A binary message."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    """A ping control frame (payload up to 125 bytes)."""

    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Pong:
    """A pong control frame (payload up to 125 bytes)."""

    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Close:
    """A close control frame; ``code=None`` sends an empty close frame (received as 1005)."""

    code: int | None = None
    reason: str = ""


Frame = Text | Binary | Ping | Pong | Close


@dataclass(slots=True)
class WireFrame:
    """One frame as it travels: what extensions transform and the parser produces."""

    opcode: Opcode
    payload: bytes
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False

    @property
    def first_byte(self) -> int:
        """The header's first byte: FIN, RSV1-3 and the opcode."""
        return (
            (0x80 if self.fin else 0)
            | (0x40 if self.rsv1 else 0)
            | (0x20 if self.rsv2 else 0)
            | (0x10 if self.rsv3 else 0)
            | self.opcode
        )


def apply_mask_python(data: bytes | bytearray | memoryview, key: bytes | bytearray | memoryview) -> bytes:
    """XOR ``data`` with the 4-byte ``key`` repeated (masking and unmasking are the same).

    The pure-Python path: one big-integer XOR, about 4 ms per MiB. :func:`apply_mask` is the C
    version (``websync.core._speedups``) when it was compiled at install, this function otherwise.
    """
    if len(key) != 4:
        raise ValueError("mask key must be 4 bytes")
    size = len(data)
    if not size:
        return b""
    repeated = bytes(key) * (size // 4 + 1)
    masked = int.from_bytes(data, "little") ^ int.from_bytes(repeated[:size], "little")
    return masked.to_bytes(size, "little")


_F = TypeVar("_F", bound=Callable[..., object])


def _accelerated(name: str, fallback: _F, *leading: object) -> _F:
    """``websync.core._speedups``' function ``name`` when the C accelerator was compiled at install,
    unless ``WEBSYNC_PURE_PYTHON`` is set (the fallback on demand, for tests and comparisons);
    the pure-Python ``fallback`` otherwise. Both give the same results. ``leading`` are the
    arguments the C function takes first where the Python one reads this module's names."""
    if os.environ.get("WEBSYNC_PURE_PYTHON"):
        return fallback
    try:
        from . import _speedups
    except ImportError:  # no compiler at install
        return fallback
    function = getattr(_speedups, name)
    return partial(function, *leading) if leading else function  # type: ignore[return-value]


apply_mask = _accelerated("apply_mask", apply_mask_python)


_HEADER_7 = struct.Struct("!BB").pack
_HEADER_16 = struct.Struct("!BBH").pack
_HEADER_64 = struct.Struct("!BBQ").pack
_UNPACK_16 = struct.Struct("!H").unpack_from
_UNPACK_64 = struct.Struct("!Q").unpack_from


def pack_header(first: int, mask_bit: int, length: int) -> bytes:
    """The header bytes from the first byte (flags and opcode), the mask bit (0x80 or 0) and the length."""
    if length < 126:
        return _HEADER_7(first, mask_bit | length)
    if length < 65536:
        return _HEADER_16(first, mask_bit | 126, length)
    return _HEADER_64(first, mask_bit | 127, length)


def encode_frame_python(first: int, payload: bytes | bytearray | memoryview, key: bytes | None) -> bytes:
    """One frame as bytes: the first header byte ``first`` (flags and opcode), the length, then
    ``payload``, masked with the 4-byte ``key`` unless it is None (the server role).

    The pure-Python path of :func:`encode_frame`.
    """
    if key is None:
        return pack_header(first, 0, len(payload)) + payload
    return b"".join((pack_header(first, 0x80, len(payload)), key, apply_mask(payload, key)))


def parse_header_python(data: bytes | bytearray | memoryview, position: int) -> tuple[int, int, int, int] | None:
    """The frame header at ``position`` in ``data``: ``(first, second, start, length)`` with the
    two first header bytes, where the payload starts (after the mask key, if any) and its length;
    None while the header is incomplete. The pure-Python path of :func:`parse_header`."""
    available = len(data) - position
    if available < 2:
        return None
    second = data[position + 1]
    length = second & 0x7F
    start = position + 2
    if length == 126:
        if available < 4:
            return None
        (length,) = _UNPACK_16(data, start)
        start += 2
    elif length == 127:
        if available < 10:
            return None
        (length,) = _UNPACK_64(data, start)
        start += 8
    return data[position], second, start + 4 if second & 0x80 else start, length


def parse_messages_python(
    data: bytes | bytearray | memoryview, position: int, max_size: int | None, masked: bool, events: list[Frame]
) -> int:
    """Append a :class:`Text` or :class:`Binary` to ``events`` for each whole message frame from
    ``position`` in ``data``: final, no RSV bit, text or binary, masked as ``masked`` says, at
    most ``max_size`` bytes (None: any), text in valid UTF-8. Stops at the first frame that is not
    one (or not whole) and returns its position, for the caller's general path to take it.

    The pure-Python path of :func:`parse_messages`: the receiving hot path of a connection
    without extensions, where every frame is a whole message.
    """
    available = len(data)
    while True:
        header = parse_header(data, position)
        if header is None:
            return position
        first, second, start, length = header
        end = start + length
        if (first != 0x82 and first != 0x81) or (second > 0x7F) is not masked or end > available:
            return position
        if max_size is not None and length > max_size:
            return position
        payload = apply_mask(data[start:end], data[start - 4 : start]) if masked else bytes(data[start:end])
        if first == 0x82:
            events.append(Binary(payload))
        else:
            try:
                events.append(Text(payload.decode()))
            except UnicodeDecodeError:
                return position
        position = end


encode_frame = _accelerated("encode_frame", encode_frame_python)
parse_header = _accelerated("parse_header", parse_header_python)
parse_messages = _accelerated("parse_messages", parse_messages_python, Text, Binary)


def close_payload(code: int | None, reason: str) -> bytes:
    """The payload of a close frame; checks the code and the 125-byte limit."""
    if code is None:
        if reason:
            raise ValueError("a close reason needs a close code")
        return b""
    if not is_valid_close_code(code):
        raise ValueError(f"invalid close code {code}")
    payload = struct.pack("!H", code) + reason.encode()
    if len(payload) > 125:
        raise ValueError("close reason is longer than 123 bytes")
    return payload


def parse_close_payload(payload: bytes) -> Close:
    """Parse a received close frame's payload, refusing bad codes (1002) and bad UTF-8 (1007)."""
    if not payload:
        return Close(CloseCode.NO_STATUS, "")
    if len(payload) == 1:
        raise ProtocolError("close frame payload of 1 byte")
    (code,) = struct.unpack_from("!H", payload)
    if not is_valid_close_code(code):
        raise ProtocolError(f"invalid close code {code}")
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError:
        raise ProtocolError("close reason is not valid UTF-8", CloseCode.INVALID_DATA) from None
    return Close(code, reason)


Outgoing = str | bytes | bytearray | memoryview | Frame
"""What a send takes: ``str`` (a text message), bytes-like (a binary message) or a frame value."""


def as_frame(message: Outgoing) -> Frame:
    """``str`` -> Text, bytes-like -> Binary, a frame value -> itself; TypeError otherwise."""
    if type(message) is bytes:
        return Binary(message)
    if isinstance(message, str):
        return Text(message)
    if isinstance(message, (bytes, bytearray, memoryview)):
        return Binary(bytes(message))
    if isinstance(message, (Text, Binary, Ping, Pong, Close)):
        return message
    raise TypeError(f"cannot send {type(message).__name__}: use str, bytes or a frame value")
