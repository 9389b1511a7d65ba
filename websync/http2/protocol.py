"""HTTP/2 for WebSockets (RFC 8441), sans-IO: bytes in, events and bytes out.

:class:`H2Protocol` wraps ``h2``'s connection state machine for the client side of WebSocket
streams: it refuses extended CONNECT until the server's SETTINGS enabled it, turns ``h2`` events
into the few that matter here, and keeps the flow-control arithmetic in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from ..core.errors import ExtendedConnectDisabled, InvalidHandshake
from ..core.headers import Headers

__all__ = [
    "H2Protocol",
    "Event",
    "Ready",
    "Answered",
    "Received",
    "Ended",
    "Reset",
    "WindowOpened",
    "GoingAway",
    "Pinged",
    "STREAM_WINDOW",
    "CONNECTION_WINDOW",
    "NO_ERROR",
    "CANCEL",
]

STREAM_WINDOW = 1 << 20
"""The receive window of each stream: how much a server may send ahead of the application."""
CONNECTION_WINDOW = 16 << 20
"""The receive window of the whole connection."""
NO_ERROR = h2.errors.ErrorCodes.NO_ERROR
CANCEL = h2.errors.ErrorCodes.CANCEL
_DEFAULT_WINDOW = 65535


@dataclass(frozen=True, slots=True)
class Ready:
    """The server's first SETTINGS arrived; ``extended_connect`` tells whether RFC 8441 is on."""

    extended_connect: bool
    settings: dict[str, int]


@dataclass(frozen=True, slots=True)
class Answered:
    """The final response headers of a stream (pseudo-headers removed)."""

    stream_id: int
    status: int
    headers: Headers


@dataclass(frozen=True, slots=True)
class Received:
    """DATA on a stream; ``flow_length`` (data plus padding) is what :meth:`H2Protocol.consumed` takes."""

    stream_id: int
    data: bytes
    flow_length: int


@dataclass(frozen=True, slots=True)
class Ended:
    """The server ended its side of a stream (END_STREAM)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class Reset:
    """A stream was reset (RST_STREAM) with ``error_code`` (0: NO_ERROR, an orderly end)."""

    stream_id: int
    error_code: int


@dataclass(frozen=True, slots=True)
class WindowOpened:
    """The server granted send window (``stream_id`` 0: the whole connection, or new SETTINGS)."""

    stream_id: int
    delta: int


@dataclass(frozen=True, slots=True)
class GoingAway:
    """GOAWAY: streams above ``last_stream_id`` were not processed; no new stream may open."""

    error_code: int
    last_stream_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Pinged:
    """An HTTP/2 PING from the server (already answered)."""

    data: bytes


Event = Ready | Answered | Received | Ended | Reset | WindowOpened | GoingAway | Pinged


class H2Protocol:
    """The client side of one HTTP/2 connection that carries WebSocket streams.

    Call :meth:`receive_data` with bytes from the network and send what :meth:`data_to_send`
    returns. :meth:`open_stream` is refused until :class:`Ready` was returned with
    ``extended_connect`` true.
    """

    def __init__(self) -> None:
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self._h2 = _Connection(config)
        self._h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 0,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: self._h2.DEFAULT_MAX_HEADER_LIST_SIZE,
            },
        )
        self.extended_connect: bool | None = None
        """None until the server's SETTINGS arrived, then whether it enabled extended CONNECT."""
        self.going_away: GoingAway | None = None
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(CONNECTION_WINDOW - _DEFAULT_WINDOW)

    # -- input ----------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Parse bytes from the server; raises :class:`InvalidHandshake` when the peer broke HTTP/2
        (a GOAWAY explaining why is then waiting in :meth:`data_to_send`)."""
        try:
            h2_events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            raise InvalidHandshake(f"HTTP/2 protocol error from the server: {exc}") from exc
        events: list[Event] = []
        for event in h2_events:
            events.extend(self._translate(event))
        return events

    def _translate(self, event: h2.events.Event) -> list[Event]:
        if isinstance(event, h2.events.RemoteSettingsChanged):
            events: list[Event] = []
            window = event.changed_settings.get(h2.settings.SettingCodes.INITIAL_WINDOW_SIZE)
            if window is not None and window.new_value != (window.original_value or _DEFAULT_WINDOW):
                events.append(WindowOpened(0, window.new_value - (window.original_value or _DEFAULT_WINDOW)))
            if self.extended_connect is None:
                settings = self._h2.remote_settings
                self.extended_connect = settings.enable_connect_protocol == 1
                named = {_setting_name(code): changed.new_value for code, changed in event.changed_settings.items()}
                events.append(Ready(self.extended_connect, named))
            return events
        if isinstance(event, h2.events.ResponseReceived):
            return [_answered(event.stream_id, event.headers or [])]
        if isinstance(event, h2.events.DataReceived):
            assert event.stream_id is not None and event.data is not None
            return [Received(event.stream_id, event.data, event.flow_controlled_length or 0)]
        if isinstance(event, h2.events.StreamEnded):
            assert event.stream_id is not None
            return [Ended(event.stream_id)]
        if isinstance(event, h2.events.StreamReset):
            assert event.stream_id is not None
            return [Reset(event.stream_id, int(event.error_code or 0))]
        if isinstance(event, h2.events.WindowUpdated):
            return [WindowOpened(event.stream_id or 0, event.delta or 0)]
        if isinstance(event, h2.events.ConnectionTerminated):
            self.going_away = GoingAway(
                int(event.error_code or 0), event.last_stream_id or 0, event.additional_data or b""
            )
            return [self.going_away]
        if isinstance(event, h2.events.PingReceived):
            return [Pinged(event.ping_data or b"")]
        return []  # SETTINGS and PING acks, informational responses, trailers, priority

    # -- output ---------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Bytes to write to the network (the connection preface first)."""
        return self._h2.data_to_send()

    def open_stream(self, headers: Sequence[tuple[str, str]]) -> int:
        """Send an extended CONNECT with ``headers`` (pseudo-headers first) and return its stream id.

        Raises :class:`ExtendedConnectDisabled` when the server did not enable it, and
        :class:`InvalidHandshake` when the connection is going away or the server's stream limit
        is reached.
        """
        if self.extended_connect is None:
            raise InvalidHandshake("extended CONNECT before the server's SETTINGS")
        if not self.extended_connect:
            raise ExtendedConnectDisabled("the HTTP/2 server did not enable extended CONNECT (RFC 8441)")
        if self.going_away is not None:
            raise InvalidHandshake("the HTTP/2 connection is going away (GOAWAY received)")
        stream_id = self._h2.get_next_available_stream_id()
        try:
            self._h2.send_headers(stream_id, [(name.encode(), value.encode()) for name, value in headers])
        except h2.exceptions.TooManyStreamsError:
            limit = self._h2.remote_settings.max_concurrent_streams
            raise InvalidHandshake(f"the HTTP/2 server allows at most {limit} concurrent streams") from None
        return stream_id

    def send_window(self, stream_id: int) -> int:
        """How many bytes may be sent on ``stream_id`` now (stream and connection windows)."""
        try:
            return self._h2.local_flow_control_window(stream_id)
        except h2.exceptions.StreamClosedError:
            return 0

    def connection_window(self) -> int:
        """How many bytes may be sent now on the whole connection (every stream's share of it)."""
        return self._h2.outbound_flow_control_window

    def send_data(self, stream_id: int, data: bytes) -> None:
        """Send ``data`` (at most :meth:`send_window` bytes), split to the server's max frame size."""
        size = self._h2.max_outbound_frame_size
        for start in range(0, len(data), size):
            self._h2.send_data(stream_id, data[start : start + size])

    def consumed(self, stream_id: int, flow_length: int) -> None:
        """The application took ``flow_length`` bytes of a stream: let the server send more."""
        self._h2.acknowledge_received_data(flow_length, stream_id)

    def end_stream(self, stream_id: int) -> None:
        """Half-close ``stream_id`` (END_STREAM) if it is still open on our side."""
        try:
            self._h2.end_stream(stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass

    def reset_stream(self, stream_id: int, error_code: int = CANCEL) -> None:
        """Abort ``stream_id`` with RST_STREAM unless it is already closed."""
        try:
            self._h2.reset_stream(stream_id, error_code)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass

    def close(self, error_code: int = NO_ERROR) -> None:
        """Send GOAWAY (unless the connection is already closed); no new streams open after it."""
        try:
            self._h2.close_connection(error_code)
        except h2.exceptions.ProtocolError:
            pass


class _Connection(h2.connection.H2Connection):
    """h2 takes any GOAWAY as the end of the connection; RFC 9113 section 6.8 lets the streams it
    covers finish, so after a GOAWAY without error the connection stays open (new streams are
    refused by :meth:`H2Protocol.open_stream`). Frame by frame, for DATA in the same read."""

    def _receive_goaway_frame(self, frame: Any) -> tuple[list[Any], list[h2.events.Event]]:
        frames, events = super()._receive_goaway_frame(frame)
        if not frame.error_code:
            self.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        return frames, events


def _answered(stream_id: int, raw: Sequence[tuple[bytes, bytes]]) -> Answered:
    status = 0
    headers = Headers()
    for name, value in raw:
        if name == b":status":
            status = int(value)
        elif not name.startswith(b":"):
            headers.add(name.decode("latin-1"), value.decode("latin-1"))
    return Answered(stream_id, status, headers)


def _setting_name(code: int) -> str:
    try:
        return h2.settings.SettingCodes(code).name
    except ValueError:
        return f"0x{code:x}"
