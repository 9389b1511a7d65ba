"""The exception hierarchy: every error websync raises derives from :class:`WebSocketError`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .headers import Headers

__all__ = [
    "WebSocketError",
    "ProtocolError",
    "PayloadTooBig",
    "InvalidHandshake",
    "InvalidStatus",
    "InvalidHeader",
    "InvalidURI",
    "NegotiationError",
    "ExtendedConnectDisabled",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "OpenTimeout",
    "TransportError",
    "ProxyError",
]


class WebSocketError(Exception):
    """Base class of every websync error."""


class ProtocolError(WebSocketError):
    """The peer broke RFC 6455; ``close_code`` is the code sent on the wire (1002 by default)."""

    def __init__(self, message: str, close_code: int = 1002) -> None:
        super().__init__(message)
        self.close_code = close_code


class PayloadTooBig(ProtocolError):
    """A message is larger than ``max_size`` (close code 1009)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, close_code=1009)


class InvalidHandshake(WebSocketError):
    """The opening handshake failed."""


class InvalidURI(InvalidHandshake, ValueError):
    """The URL is not a valid ws:// or wss:// URL."""


class InvalidHeader(InvalidHandshake):
    """A handshake header is missing or has a wrong value."""


class NegotiationError(InvalidHandshake):
    """The server chose a subprotocol or extension that was not offered, or bad parameters."""


class InvalidStatus(InvalidHandshake):
    """The server answered the upgrade with a status other than 101 (or 200 over HTTP/2).

    ``status``, ``headers`` and a bounded ``body`` carry the server's answer.
    """

    def __init__(self, status: int, headers: Headers, body: bytes = b"") -> None:
        super().__init__(f"server rejected the WebSocket upgrade with HTTP status {status}")
        self.status = status
        self.headers = headers
        self.body = body


class ProxyError(InvalidHandshake):
    """A proxy refused the tunnel or broke its protocol (HTTP CONNECT or SOCKS5).

    An :class:`InvalidHandshake`, like a refusal by the server: the network worked, the
    negotiation failed (failing to reach the proxy at all is a :class:`TransportError`).
    ``status`` and ``headers`` hold an HTTP proxy's answer (407: credentials missing, 403: not
    allowed, 502: the proxy could not reach the server), ``socks_reply`` a SOCKS5 reply code.
    Messages name the proxy without its credentials.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        headers: Headers | None = None,
        socks_reply: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers
        self.socks_reply = socks_reply


class ExtendedConnectDisabled(InvalidHandshake):
    """The HTTP/2 server did not enable extended CONNECT (RFC 8441, SETTINGS_ENABLE_CONNECT_PROTOCOL)."""


class OpenTimeout(InvalidHandshake, TimeoutError):
    """Connecting or the opening handshake took longer than ``open_timeout``."""


class TransportError(WebSocketError, OSError):
    """The network failed: connection refused, reset, TLS failure, DNS failure."""


class ConnectionClosed(WebSocketError):
    """The connection is closed; ``code`` and ``reason`` are those of the close handshake.

    ``code`` is 1006 when the connection was lost without a close frame, and 1005 when the
    peer's close frame carried no code.
    """

    def __init__(self, code: int, reason: str = "", *, initiated_by_peer: bool | None = None) -> None:
        detail = f"{code} ({reason})" if reason else str(code)
        super().__init__(f"WebSocket connection closed: {detail}")
        self.code = code
        self.reason = reason
        self.initiated_by_peer = initiated_by_peer


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally (1000, 1001, or a close frame without a code: 1005)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed with an error code, or was lost (1006)."""


def is_normal_close(code: int | None) -> bool:
    """True for the close codes of a normal end: 1000 (normal), 1001 (going away) and 1005 (a
    close frame that gave no code: the peer closed on purpose and named no error)."""
    return code in (1000, 1001, 1005)


def closed_error(code: int, reason: str = "", *, initiated_by_peer: bool | None = None) -> ConnectionClosed:
    """Build the right :class:`ConnectionClosed` subclass for a close code."""
    cls = ConnectionClosedOK if is_normal_close(code) else ConnectionClosedError
    return cls(code, reason, initiated_by_peer=initiated_by_peer)
