"""The sans-IO WebSocket state machine for one connection, client or server role (RFC 6455).

Bytes go in through :meth:`Protocol.receive_data` and come back as frame values; frames to send go
in through :meth:`Protocol.send` and come back as bytes. Replies the protocol owes the peer (the
echo of a close frame, the close frame that fails a broken connection) wait in
:meth:`Protocol.data_to_send`. No sockets, threads or clocks here.
"""

from __future__ import annotations

import codecs
import enum
from collections.abc import Callable, Sequence

from ..extensions.base import Extension
from .entropy import mask_key as random_mask_key
from .errors import ConnectionClosed, PayloadTooBig, ProtocolError, closed_error
from .frames import (
    Binary,
    Close,
    CloseCode,
    Frame,
    Opcode,
    Ping,
    Pong,
    Text,
    WireFrame,
    apply_mask,
    close_payload,
    encode_frame,
    parse_close_payload,
    parse_header,
    parse_messages,
)

__all__ = ["Role", "State", "Protocol", "DEFAULT_MAX_SIZE"]

DEFAULT_MAX_SIZE = 2**20

_OPCODES = {int(op): op for op in Opcode}
_utf8_decoder = codecs.getincrementaldecoder("utf-8")


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


class State(enum.IntEnum):
    """OPEN until a close frame is sent or received, CLOSING until both are, then CLOSED.

    CLOSED is also where a lost connection ends (close code 1006).
    """

    OPEN = 1
    CLOSING = 2
    CLOSED = 3


_CLOSED = State.CLOSED  # for the hot paths: an Enum member lookup costs ~0.1 µs


def _no_mask_key() -> None:
    """A server's frames are not masked."""


def _is_surrogate_prefix(pending: bytes) -> bool:
    """True for ED A0..ED BF: the start of a UTF-16 surrogate, which no continuation can make valid
    (Python's incremental decoder only refuses it once the third byte arrives)."""
    return len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0


class _Probe:
    """How far a text frame that has only partly arrived was checked for valid UTF-8."""

    __slots__ = ("decoder", "checked")

    def __init__(self, decoder: codecs.IncrementalDecoder) -> None:
        self.decoder = decoder
        self.checked = 0


class _Message:
    """A data message being received, possibly over several fragments."""

    __slots__ = ("opcode", "compressed", "parts", "size", "wire_size", "utf8")

    def __init__(self, opcode: Opcode, compressed: bool) -> None:
        self.opcode = opcode
        self.compressed = compressed
        self.parts: list[bytes | str] = []
        self.size = 0
        self.wire_size = 0
        self.utf8 = _utf8_decoder() if opcode is Opcode.TEXT else None


class Protocol:
    """One WebSocket connection's frames and close handshake, after the opening handshake.

    ``max_size`` bounds a received message in bytes (``None``: unlimited); ``extensions`` are the
    negotiated extensions in the order the server listed them.

    Threads: a Protocol takes no lock and starts no thread; its owner (``net.Connection``) calls it
    under these rules. Receiving (``receive_messages``, ``receive_data``, ``receive_eof``) is done by
    one reader at a time. ``send_message`` changes no state a reader shares (only the masking and
    the compressor, which the writer owns), so it runs under the writer's lock alone; every other
    call that changes state (``send``, ``queue_control``, ``replies_to_send``, ``send_failure``, the
    receiving calls past whole messages) runs under the owner's state lock. Reading attributes
    (``state``, ``closing``, ``close_sent``, ``error``) is safe from any thread: each is one
    assignment.
    """

    def __init__(
        self,
        role: Role,
        *,
        max_size: int | None = DEFAULT_MAX_SIZE,
        extensions: Sequence[Extension] = (),
        mask_key: Callable[[], bytes] | None = None,
    ) -> None:
        self.role = role
        self.max_size = max_size
        self.extensions = tuple(extensions)
        self._masked_out = role is Role.CLIENT
        self._next_key: Callable[[], bytes | None] = (mask_key or random_mask_key) if self._masked_out else _no_mask_key
        """The mask key of the next frame sent: a fresh random one for a client, None for a server."""
        self._rsv1_allowed = any(ext.rsv1 for ext in self.extensions)
        self.state = State.OPEN
        self.close_sent: Close | None = None
        self.close_received: Close | None = None
        self.error: ProtocolError | None = None
        """The violation that failed the connection, if any; a close frame with its code is queued."""
        self.closing = False
        """True once a close frame went either way, the transport ended or a violation failed the
        connection: the state left OPEN or :attr:`error` is set (an attribute, not a property: the
        blocking client reads it on every ``recv``)."""
        self._buffer = bytearray()
        self.replies: list[Frame] = []
        """The frames the protocol itself owes the peer, oldest first; read only
        (:meth:`replies_to_send` takes them). Not empty: a writer has replies to send."""
        self._message: _Message | None = None
        self._probe: _Probe | None = None
        self._skip: int | None = None
        """After a violation: the bytes of the refused frame still to come, or None when the stream
        cannot be followed (a length with its most significant bit set; see :meth:`_discard`)."""
        self._after_failure = b""
        """The bytes after the refused frame in the read that failed, for :meth:`_discard`."""
        self.failure_acknowledged = False
        """After a violation, whether the peer's close frame came (the connection may then end)."""
        self.closed_by_peer: bool | None = None
        """Who started the close handshake: the peer (True), this side (False), nobody yet (None)."""

    # -- receiving ---------------------------------------------------------------------------

    @property
    def _done_receiving(self) -> bool:
        """Whether parsing is over: the peer's close frame came (which closes the connection), a
        violation failed the connection or the transport ended."""
        return self.state is _CLOSED or self.error is not None or self.close_received is not None

    def receive_messages(self, data: bytes | bytearray | memoryview) -> tuple[list[Frame], int]:
        """The common case of :meth:`receive_data`: the whole text and binary messages at the start
        of ``data`` and the bytes they took, when nothing is buffered, no message is in progress,
        no extension is negotiated and the connection is not :attr:`closing`; else ``([], 0)``.
        :meth:`receive_data` takes the rest (the close handshake included).

        It only reads the protocol's state, so a reader may call it without the lock that orders
        :meth:`receive_data` against sending and :meth:`receive_eof` (``data`` is not kept).
        """
        events: list[Frame] = []
        if self._buffer or self._message is not None or self.extensions or self.closing:
            return events, 0
        return events, parse_messages(data, 0, self.max_size, not self._masked_out, events)

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Feed received bytes; return the whole messages and control frames they complete.

        A protocol violation sets :attr:`error`, queues a close frame with the RFC's code and
        stops parsing; frames before the violation are still returned. ``data`` is not kept:
        the caller may reuse its buffer.
        """
        if self._done_receiving:
            if self.error is not None and self.state is not _CLOSED:
                self._discard(data)
            return []
        events: list[Frame] = []
        buffer = self._buffer
        # Frames are parsed in place: the received bytes are copied once into each payload, and
        # only an incomplete frame's bytes are kept in the buffer.
        try:
            if buffer:
                buffer += data
                with memoryview(buffer) as view:
                    position = self._parse_frames(view, events)
                del buffer[:position]
            else:
                position = self._parse_frames(data, events)
                if position < len(data):
                    buffer += data[position:]
        except ProtocolError as exc:
            after = self._after_failure
            self._fail(exc)  # clears the buffer: the view on it is released by now
            if after:
                self._after_failure = b""
                self._discard(after)
        return events

    def _parse_frames(self, view: bytes | bytearray | memoryview, events: list[Frame]) -> int:
        """Append the events of the whole frames at the start of ``view``; return the bytes used.

        Without extensions and between messages, :func:`parse_messages` takes the whole,
        final text and binary frames (the common case); the general path takes every other frame.
        """
        position = 0
        available = len(view)
        while True:
            if not self.extensions and self._message is None:
                parsed = parse_messages(view, position, self.max_size, not self._masked_out, events)
                if parsed != position:
                    position = parsed
                    self._probe = None
                    if position == available:
                        break
            header = parse_header(view, position)
            if header is None:
                break
            first, second, start, length = header
            if length >> 63:
                raise ProtocolError("frame length has the most significant bit set")
            masked = second > 0x7F
            end = start + length
            try:
                opcode = self._check_header(first, masked, length)
                if end > available:
                    self._check_partial_text(view, first, start, available, masked)
                    break
                payload = apply_mask(view[start:end], view[start - 4 : start]) if masked else bytes(view[start:end])
                position = end
                self._probe = None
                event = self._receive_frame(WireFrame(opcode, payload, first > 0x7F, bool(first & 0x40), False, False))
            except ProtocolError:
                self._skip_after_failure(first, view, end)
                raise
            if event is not None:
                events.append(event)
                if self.close_received is not None:
                    break
        return position

    def _check_partial_text(
        self, view: bytes | bytearray | memoryview, first: int, start: int, available: int, masked: bool
    ) -> None:
        """Fail fast on invalid UTF-8 in a text frame that has only partly arrived.

        The bytes that arrived are checked once each, by a probe decoder that continues the
        message's own; the frame is decoded for real when it is whole.
        """
        opcode = first & 0x0F
        message = self._message
        if first & 0x40 or not (
            (opcode == Opcode.TEXT and message is None)
            or (
                opcode == Opcode.CONTINUATION
                and message is not None
                and message.utf8 is not None
                and not message.compressed
            )
        ):
            return
        if self._probe is None:
            decoder = _utf8_decoder()
            if message is not None and message.utf8 is not None:
                decoder.setstate(message.utf8.getstate())
            self._probe = _Probe(decoder)
        probe = self._probe
        if available - start <= probe.checked:
            return
        chunk = bytes(view[start + probe.checked : available])
        if masked:
            shift = probe.checked % 4
            key = bytes(view[start - 4 : start])
            chunk = apply_mask(chunk, key[shift:] + key[:shift])
        try:
            probe.decoder.decode(chunk, False)
        except UnicodeDecodeError:
            raise ProtocolError("invalid UTF-8 in a text message", CloseCode.INVALID_DATA) from None
        if _is_surrogate_prefix(probe.decoder.getstate()[0]):
            raise ProtocolError("invalid UTF-8 in a text message (surrogate)", CloseCode.INVALID_DATA)
        probe.checked = available - start

    def receive_eof(self) -> None:
        """The transport ended: the connection is CLOSED (code 1006 unless the handshake completed)."""
        self.state = State.CLOSED
        self.closing = True
        self._buffer.clear()

    def _check_header(self, first: int, masked: bool, length: int) -> Opcode:
        """Refuse a frame as soon as its header is known, before waiting for its payload."""
        if first & 0x30 or (first & 0x40 and not self._rsv1_allowed):
            raise ProtocolError("reserved bit set without an extension that defines it")
        opcode = _OPCODES.get(first & 0x0F)
        if opcode is None:
            raise ProtocolError(f"unknown opcode {first & 0x0F:#x}")
        if masked is self._masked_out:
            raise ProtocolError("server frames must not be masked" if masked else "client frames must be masked")
        if opcode >= Opcode.CLOSE:
            if first & 0x40:
                raise ProtocolError("RSV1 set on a control frame")
            if not first & 0x80:
                raise ProtocolError("fragmented control frame")
            if length > 125:
                raise ProtocolError("control frame payload longer than 125 bytes")
            return opcode
        if opcode is Opcode.CONTINUATION:
            if self._message is None:
                raise ProtocolError("continuation frame without a message to continue")
        elif self._message is not None:
            raise ProtocolError("new data frame before the previous message ended")
        if self.max_size is not None:
            self._check_wire_size(opcode is Opcode.CONTINUATION, bool(first & 0x40), length)
        return opcode

    def _check_wire_size(self, continuation: bool, rsv1: bool, length: int) -> None:
        """Refuse a message that will pass max_size before its payload arrives.

        Uncompressed, wire bytes are message bytes. Compressed, the wire bound leaves room for
        deflate's worst-case growth of incompressible data; the extension bounds the inflated size.
        """
        assert self.max_size is not None
        message = self._message if continuation else None
        compressed = message.compressed if message is not None else rsv1
        size = length + (message.wire_size if message is not None else 0)
        limit = self.max_size + self.max_size // 256 + 64 if compressed else self.max_size
        if size > limit:
            raise PayloadTooBig(f"message of over {size} bytes exceeds max_size ({self.max_size} bytes)")

    def _receive_frame(self, frame: WireFrame) -> Frame | None:
        opcode = frame.opcode
        if opcode is Opcode.PING:
            return Ping(frame.payload)
        if opcode is Opcode.PONG:
            return Pong(frame.payload)
        if opcode is Opcode.CLOSE:
            return self._receive_close(frame.payload)
        message = self._message
        if message is None:
            message = _Message(opcode, frame.rsv1)
        message.wire_size += len(frame.payload)
        for extension in reversed(self.extensions):
            frame = extension.decode(frame, max_size=self.max_size)
        if frame.rsv1:
            raise ProtocolError("RSV1 set on a frame no extension decoded")
        if message.utf8 is not None:
            try:
                part: bytes | str = message.utf8.decode(frame.payload, frame.fin)
            except UnicodeDecodeError:
                raise ProtocolError("invalid UTF-8 in a text message", CloseCode.INVALID_DATA) from None
            if _is_surrogate_prefix(message.utf8.getstate()[0]):
                raise ProtocolError("invalid UTF-8 in a text message (surrogate)", CloseCode.INVALID_DATA)
        else:
            part = frame.payload
        message.size += len(frame.payload)
        if self.max_size is not None and message.size > self.max_size:
            raise PayloadTooBig(f"message exceeds max_size ({self.max_size} bytes)")
        if frame.fin:
            self._message = None
            if message.parts:
                message.parts.append(part)
                part = "".join(message.parts) if message.utf8 is not None else b"".join(message.parts)  # type: ignore[arg-type]
            return Text(part) if message.utf8 is not None else Binary(part)  # type: ignore[arg-type]
        message.parts.append(part)
        self._message = message
        return None

    def _receive_close(self, payload: bytes) -> Close:
        close = parse_close_payload(payload)
        self.close_received = close
        if self.close_sent is None:
            self.closed_by_peer = True
            self.state = State.CLOSING  # until the reply (see close_reply) is sent
        else:
            self.state = State.CLOSED
        self.closing = True
        return close

    def close_reply(self) -> Close | None:
        """The close frame that answers the peer's (its code echoed; none for a close without
        one), or None when no answer is owed: no close came, or one was sent.

        The caller sends it once it has handled the frames that came before the peer's close,
        so that its answers to them go out first (the protocol never queues it by itself).
        """
        received = self.close_received
        if received is None or self.close_sent is not None or self.state is _CLOSED:
            return None
        return Close(None if received.code == CloseCode.NO_STATUS else received.code)

    def _skip_after_failure(self, first: int, view: bytes | bytearray | memoryview, end: int) -> None:
        """Where to go on reading after a violation in the frame that starts with byte ``first``
        and ends at ``end``: its header gave its length, so it is skipped and the peer's answer to
        our close can be found behind it. A refused close frame is that answer already."""
        if first & 0x0F == Opcode.CLOSE:
            self.failure_acknowledged = True
        else:
            self._skip = max(end - len(view), 0)
            self._after_failure = bytes(view[end:])

    def _discard(self, data: bytes | bytearray | memoryview) -> None:
        """After a violation, skip what the peer sends while looking for its close frame only
        (see :attr:`failure_acknowledged`); a stream that cannot be followed is skipped whole."""
        skip = self._skip
        if skip is None or self.failure_acknowledged:
            return
        if skip >= len(data):
            self._skip = skip - len(data)
            return
        buffer = self._buffer
        buffer += data[skip:]
        self._skip = 0
        position = 0
        while (header := parse_header(buffer, position)) is not None:
            first, _, start, length = header
            end = start + length
            if first & 0x0F == Opcode.CLOSE and length <= 125:
                if end <= len(buffer):
                    self.failure_acknowledged = True
                    buffer.clear()
                    return
                break
            if end > len(buffer):
                self._skip = end - len(buffer)
                position = len(buffer)
                break
            position = end
        del buffer[:position]

    def _fail(self, error: ProtocolError) -> None:
        """Stop parsing; the close frame with the error's code waits in the replies.

        Until the replies are taken, frames may still be sent: an application can answer the
        messages that arrived before the violation, and those answers go out before the close.
        """
        self.error = error
        self.closing = True
        self._message = None
        self._buffer.clear()

    # -- sending -----------------------------------------------------------------------------

    def send(self, frame: Frame, *, fragment_size: int | None = None) -> bytes:
        """Encode ``frame`` for the wire; a data message is split into ``fragment_size`` pieces.

        Raises :class:`~websync.core.errors.ConnectionClosed` once a close frame was sent, and
        ``ValueError``/``TypeError`` for a frame that cannot be encoded.
        """
        if self.close_sent is not None or self.state is _CLOSED:
            raise self.closed_exception()
        if isinstance(frame, Text):
            return self._send_message(Opcode.TEXT, frame.data.encode(), fragment_size)
        if isinstance(frame, Binary):
            return self._send_message(Opcode.BINARY, bytes(frame.data), fragment_size)
        if isinstance(frame, Close):
            payload = close_payload(frame.code, frame.reason)
            self.close_sent = Close(CloseCode.NO_STATUS if frame.code is None else frame.code, frame.reason)
            if self.closed_by_peer is None:
                self.closed_by_peer = False
            self.state = State.CLOSED if self.close_received is not None else State.CLOSING
            self.closing = True
            return self._encode(WireFrame(Opcode.CLOSE, payload))
        if isinstance(frame, (Ping, Pong)):
            data = bytes(frame.data)
            if len(data) > 125:
                raise ValueError("control frame payload longer than 125 bytes")
            return self._encode(WireFrame(Opcode.PING if isinstance(frame, Ping) else Opcode.PONG, data))
        raise TypeError(f"not a frame: {frame!r}")

    def send_message(self, data: str | bytes | bytearray | memoryview) -> bytes:
        """Encode a whole message in one frame: ``str`` as text, bytes-like as binary.

        The common case of :meth:`send`, without a frame value. It changes no state but the
        extensions' (their compressors), so a connection's one sender may call it while another
        thread feeds :meth:`receive_data`. Raises :class:`~websync.core.errors.ConnectionClosed` once a
        close frame was sent.
        """
        if self.close_sent is not None or self.state is _CLOSED:
            raise self.closed_exception()
        if type(data) is bytes:  # not bytes(data): even for bytes, its argument parsing costs ~0.3 µs
            first, payload = 0x82, data
        elif type(data) is str:
            first, payload = 0x81, data.encode()
        else:
            first, payload = 0x82, bytes(data)  # type: ignore[arg-type]
        if self.extensions:
            return self._send_message(Opcode(first & 0x0F), payload, None)
        return encode_frame(first, payload, self._next_key())

    def _send_message(self, opcode: Opcode, payload: bytes, fragment_size: int | None) -> bytes:
        if fragment_size is not None and fragment_size < 1:
            raise ValueError("fragment_size must be positive")
        if fragment_size is None or len(payload) <= fragment_size:
            return self._encode_data(WireFrame(opcode, payload))
        chunks = [payload[start : start + fragment_size] for start in range(0, len(payload), fragment_size)]
        last = len(chunks) - 1
        return b"".join(
            self._encode_data(WireFrame(opcode if index == 0 else Opcode.CONTINUATION, chunk, fin=index == last))
            for index, chunk in enumerate(chunks)
        )

    def _encode_data(self, frame: WireFrame) -> bytes:
        for extension in self.extensions:
            frame = extension.encode(frame)
        return self._encode(frame)

    def _encode(self, frame: WireFrame) -> bytes:
        return encode_frame(frame.first_byte, frame.payload, self._next_key())

    def replies_to_send(self) -> list[tuple[Frame, bytes]]:
        """Encode and take the frames the protocol itself owes the peer, each with its bytes (for
        callers that trace): pongs and pings queued by :meth:`queue_control`, and the close of a
        violation once :meth:`send_failure` queued it. Nothing is encoded after a close frame
        went out."""
        replies, self.replies = self.replies, []
        return [(frame, self.send(frame)) for frame in replies if self.close_sent is None and self.state is not _CLOSED]

    def queue_control(self, frame: Ping | Pong) -> None:
        """Queue a ping or pong among the replies, to go out with the next :meth:`replies_to_send`.

        Control frames may go between any two frames, so a writer busy with a long message can
        carry them right after it: an answer to a ping never waits behind a queue of messages.
        Raises :class:`~websync.core.errors.ConnectionClosed` once a close frame was sent, and
        ``ValueError`` for a payload longer than 125 bytes.
        """
        if self.close_sent is not None or self.state is _CLOSED:
            raise self.closed_exception()
        if len(frame.data) > 125:
            raise ValueError("control frame payload longer than 125 bytes")
        self.replies.append(frame)

    def send_failure(self) -> None:
        """Queue the close frame that fails the connection after a violation, once. Until a writer
        takes it, an application may still answer the messages that arrived before the violation,
        and those answers go out first."""
        if self.error is None or self.close_sent is not None or self.state is State.CLOSED:
            return
        if not any(type(frame) is Close for frame in self.replies):
            self.replies.append(Close(self.error.close_code, str(self.error).encode()[:123].decode(errors="ignore")))

    # -- closing -----------------------------------------------------------------------------

    @property
    def close_code(self) -> int:
        """The close code to report: the peer's, or ours after a failure, else 1006 (abnormal)."""
        if self.close_received is not None:
            return self.close_received.code  # type: ignore[return-value]
        if self.error is not None:
            return self.error.close_code
        if self.state is State.CLOSING and self.close_sent is not None:
            return self.close_sent.code  # type: ignore[return-value]
        return CloseCode.ABNORMAL

    @property
    def close_reason(self) -> str:
        if self.close_received is not None:
            return self.close_received.reason
        if self.error is not None:
            return str(self.error)
        if self.state is State.CLOSING and self.close_sent is not None:
            return self.close_sent.reason
        return ""

    def closed_exception(self) -> ConnectionClosed:
        """The exception that reports this connection's end to callers."""
        return closed_error(self.close_code, self.close_reason, initiated_by_peer=self.closed_by_peer)
