"""The WebSocket handshake over HTTP/2 (RFC 8441 section 4 and 5), sans-IO.

The same :class:`~websync.core.handshake.ClientHandshake` as over HTTP/1.1 supplies the headers and
checks the negotiation; only the framing differs: an extended CONNECT instead of the upgrade,
a 200 instead of the 101, and no ``Sec-WebSocket-Key``/``Accept``.
"""

from __future__ import annotations

from ..core.errors import InvalidStatus
from ..core.handshake import Accepted, ClientHandshake, Response
from ..core.headers import Headers

__all__ = ["request_headers", "accept"]

_HTTP11_ONLY = frozenset({"host", "upgrade", "connection", "sec-websocket-key", "keep-alive", "transfer-encoding"})
"""Headers of the HTTP/1.1 upgrade that HTTP/2 forbids or RFC 8441 does not use."""


def request_headers(handshake: ClientHandshake) -> list[tuple[str, str]]:
    """The extended CONNECT's header list: pseudo-headers first, then lower-cased headers."""
    uri = handshake.uri
    headers = [
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "https" if uri.secure else "http"),
        (":path", uri.resource),
        (":authority", uri.authority),
    ]
    for name, value in handshake.request_headers.items():
        if name.lower() not in _HTTP11_ONLY:
            headers.append((name.lower(), value))
    return headers


def accept(handshake: ClientHandshake, status: int, headers: Headers, body: bytes = b"") -> tuple[Response, Accepted]:
    """Check the answer: 200 with a subprotocol and extensions that were offered.

    Raises :class:`~websync.core.errors.InvalidStatus` for any other status (a redirect included,
    with its ``Location``), and :class:`~websync.core.errors.NegotiationError` for a bad choice.
    """
    if status != 200:
        raise InvalidStatus(status, headers, body)
    response = Response(status, "", headers)
    return response, handshake.negotiate(headers)
