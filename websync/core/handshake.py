"""The client's HTTP/1.1 upgrade (RFC 6455 section 4.1), sans-IO: request bytes out, response in."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..extensions.base import ClientExtensionFactory, Extension
from .body import MAX_BODY_BYTES, BodyReader
from .entropy import random_bytes
from .errors import InvalidHandshake, InvalidHeader, InvalidStatus, NegotiationError
from .headers import Headers, HeadersLike, format_extension_list, parse_extension_list, parse_token_list
from .uri import WebSocketURI

__all__ = [
    "Response",
    "Accepted",
    "ClientHandshake",
    "ResponseParser",
    "accept_key",
    "REDIRECT_STATUSES",
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_HEADERS",
    "cut_head",
    "format_head",
    "parse_status",
    "has_token",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_HEADER_BYTES = 64 * 1024
"""Bound on the whole response head (status line and headers)."""
MAX_HEADERS = 128


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


@dataclass(slots=True)
class Response:
    """The server's answer to the upgrade request."""

    status: int
    reason: str
    headers: Headers
    body: bytes = b""


@dataclass(slots=True)
class Accepted:
    """What the handshake negotiated."""

    subprotocol: str | None
    extensions: list[Extension] = field(default_factory=list)


class ResponseParser:
    """Parses an HTTP/1.1 response head, then (for a refusal) its bounded body.

    Feed bytes with :meth:`receive_data` until it returns the :class:`Response`; call
    :meth:`receive_eof` when the peer closes. Bytes past a 101 head are in :attr:`leftover`.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._response: Response | None = None
        self._body: BodyReader | None = None
        self.leftover = b""

    def receive_data(self, data: bytes) -> Response | None:
        if self._response is not None:
            return self._feed_body(data)
        self._buffer += data
        head = cut_head(self._buffer, "response")
        if head is None:
            return None
        self._response = parse_status(*head)
        if self._response.status == 101:
            self.leftover = bytes(self._buffer)
            return self._response
        self._body = BodyReader.for_response(self._response.status, self._response.headers)
        return self._feed_body(self._buffer)

    def _feed_body(self, data: bytes | bytearray) -> Response | None:
        assert self._body is not None
        return self._finish() if self._body.feed(data) else None

    def receive_eof(self) -> Response | None:
        """The peer closed: the response is whatever arrived (None if the head is incomplete)."""
        return None if self._response is None else self._finish()

    def _finish(self) -> Response:
        assert self._response is not None and self._body is not None
        self._response.body = bytes(self._body.body)
        return self._response


def cut_head(buffer: bytearray, what: str) -> tuple[str, Headers] | None:
    """Take a complete HTTP/1.1 head (start line and headers) off the front of ``buffer``.

    Returns ``(start line, headers)``, or None while the blank line that ends the head has not
    arrived. ``what`` names the head in errors. Raises :class:`InvalidHandshake` for a head
    longer than :data:`MAX_HEADER_BYTES`, more than :data:`MAX_HEADERS` headers or a malformed
    header line.
    """
    end = buffer.find(b"\r\n\r\n")
    if end > MAX_HEADER_BYTES or (end < 0 and len(buffer) > MAX_HEADER_BYTES):
        raise InvalidHandshake(f"{what} head is longer than {MAX_HEADER_BYTES} bytes")
    if end < 0:
        return None
    text = bytes(buffer[:end]).decode("iso-8859-1")  # latin-1 decodes any byte
    del buffer[: end + 4]
    start_line, *lines = text.split("\r\n")
    if len(lines) > MAX_HEADERS:
        raise InvalidHandshake(f"{what} has more than {MAX_HEADERS} headers")
    headers = Headers()
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or " " in name:
            raise InvalidHandshake(f"invalid header line {line[:80]!r}")
        headers.add(name, value.strip())
    return start_line, headers


def format_head(start_line: str, headers: Headers) -> bytes:
    """An HTTP/1.1 head: the start line, the headers and the blank line."""
    lines = [start_line, *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def has_token(headers: Headers, name: str, token: str) -> bool:
    """Whether header ``name`` lists ``token`` (case-insensitive), as Upgrade and Connection must."""
    return token.lower() in [item.lower() for item in parse_token_list(headers.get(name, ""))]


def parse_status(status_line: str, headers: Headers) -> Response:
    """The :class:`Response` (without body) of a status line and its headers; rejects non-HTTP."""
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or parts[0] not in ("HTTP/1.1", "HTTP/1.0") or not (parts[1].isdigit() and len(parts[1]) == 3):
        raise InvalidHandshake(f"not an HTTP response: {status_line[:80]!r}")
    return Response(int(parts[1]), parts[2] if len(parts) > 2 else "", headers)


class ClientHandshake:
    """The client side of one HTTP/1.1 upgrade attempt."""

    def __init__(
        self,
        uri: WebSocketURI,
        *,
        headers: HeadersLike | None = None,
        origin: str | None = None,
        subprotocols: Sequence[str] = (),
        extensions: Sequence[ClientExtensionFactory] = (),
        key: str | None = None,
    ) -> None:
        self.uri = uri
        self.key = key or base64.b64encode(random_bytes(16)).decode()
        self.subprotocols = list(subprotocols)
        self.extension_factories = list(extensions)
        self.request_headers = self._build_headers(headers, origin)

    def _build_headers(self, extra: HeadersLike | None, origin: str | None) -> Headers:
        headers = Headers([("Host", self.uri.authority), ("Upgrade", "websocket"), ("Connection", "Upgrade")])
        headers.add("Sec-WebSocket-Key", self.key)
        headers.add("Sec-WebSocket-Version", "13")
        if origin is not None:
            headers.add("Origin", origin)
        if self.subprotocols:
            headers.add("Sec-WebSocket-Protocol", ", ".join(self.subprotocols))
        if self.extension_factories:
            offers = [(factory.name, factory.offer()) for factory in self.extension_factories]
            headers.add("Sec-WebSocket-Extensions", format_extension_list(offers))
        if self.uri.username is not None:
            credentials = f"{self.uri.username}:{self.uri.password or ''}".encode()
            headers.add("Authorization", "Basic " + base64.b64encode(credentials).decode())
        if extra is not None:
            headers.update(extra)
        return headers

    def request_bytes(self) -> bytes:
        """The GET request that asks for the upgrade."""
        return format_head(f"GET {self.uri.resource} HTTP/1.1", self.request_headers)

    def accept(self, response: Response) -> Accepted:
        """Check the server's answer; raise :class:`InvalidStatus` for anything but a valid 101."""
        if response.status != 101:
            raise InvalidStatus(response.status, response.headers, response.body)
        headers = response.headers
        if not has_token(headers, "Upgrade", "websocket"):
            raise InvalidHeader(f"Upgrade header is {headers.get('Upgrade')!r}, not 'websocket'")
        if not has_token(headers, "Connection", "upgrade"):
            raise InvalidHeader(f"Connection header is {headers.get('Connection')!r}, not 'Upgrade'")
        accept = headers.get_all("Sec-WebSocket-Accept")
        if accept != [accept_key(self.key)]:
            raise InvalidHeader(f"wrong Sec-WebSocket-Accept {accept!r}")
        return self.negotiate(headers)

    def negotiate(self, headers: Headers) -> Accepted:
        """The subprotocol and extensions the server's headers choose (HTTP/1.1 and HTTP/2 alike)."""
        return Accepted(self._accept_subprotocol(headers), self._accept_extensions(headers))

    def _accept_subprotocol(self, headers: Headers) -> str | None:
        chosen = parse_token_list(headers.get("Sec-WebSocket-Protocol", ""))
        if not chosen:
            return None
        if len(chosen) > 1:
            raise NegotiationError(f"server chose several subprotocols: {chosen}")
        if chosen[0] not in self.subprotocols:
            raise NegotiationError(f"server chose subprotocol {chosen[0]!r}, which was not offered")
        return chosen[0]

    def _accept_extensions(self, headers: Headers) -> list[Extension]:
        accepted: list[Extension] = []
        for value in headers.get_all("Sec-WebSocket-Extensions"):
            for name, params in parse_extension_list(value):
                factory = next((f for f in self.extension_factories if f.name == name), None)
                if factory is None:
                    raise NegotiationError(f"server accepted extension {name!r}, which was not offered")
                accepted.append(factory.accept(params, accepted))
        return accepted
