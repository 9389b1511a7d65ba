"""The server's side of the HTTP/1.1 upgrade (RFC 6455 section 4.2), sans-IO: request in, response out.

:class:`RequestParser` turns bytes into a :class:`Request`; :class:`ServerHandshake` checks it,
negotiates the subprotocol and extensions and builds the 101 response; :func:`error_response`
builds the answer to a request that is refused. :func:`format_response` gives the bytes to send.
"""

from __future__ import annotations

import base64
import binascii
import http
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from ..extensions.base import Extension, ExtensionParams, ServerExtensionFactory
from .errors import InvalidHandshake, NegotiationError
from .handshake import Response, accept_key, cut_head, format_head, has_token
from .headers import (
    Headers,
    HeadersLike,
    format_extension_list,
    parse_extension_list,
    parse_token_list,
)

__all__ = [
    "InvalidRequest",
    "Request",
    "RequestAnswered",
    "RequestParser",
    "ServerHandshake",
    "Upgrade",
    "error_response",
    "format_response",
]


@dataclass(frozen=True, slots=True)
class Request:
    """The client's request: ``path`` is the request target (path and query); ``version`` is
    ``"HTTP/1.1"``, or ``"HTTP/1.0"`` for a plain request (a health check) that cannot upgrade."""

    method: str
    path: str
    headers: Headers
    version: str = "HTTP/1.1"


class InvalidRequest(InvalidHandshake):
    """The upgrade request is refused; ``response`` is the HTTP answer to send (400, 403, 426...).

    The response's body is ``body``, or the ``message`` when there is none.
    """

    def __init__(
        self, status: int, message: str, headers: HeadersLike | None = None, body: bytes | None = None
    ) -> None:
        super().__init__(message)
        self.response = error_response(status, message.encode() if body is None else body, headers)


class RequestAnswered(InvalidRequest):
    """The server's ``process_request`` answered the request with ``response``: no upgrade."""

    def __init__(self, response: Response) -> None:
        InvalidHandshake.__init__(self, f"answered with HTTP {response.status} by process_request")
        self.response = response


def error_response(status: int, body: bytes = b"", headers: HeadersLike | None = None) -> Response:
    """A refusal: ``status`` with a plain-text ``body``; the connection closes after it."""
    response_headers = Headers(headers)
    if "Content-Type" not in response_headers:
        response_headers.add("Content-Type", "text/plain; charset=utf-8")
    response_headers.add("Content-Length", str(len(body)))
    response_headers.add("Connection", "close")
    return Response(status, _reason(status), response_headers, body)


def format_response(response: Response) -> bytes:
    """The bytes of ``response``: status line, headers and body."""
    return format_head(f"HTTP/1.1 {response.status} {response.reason}", response.headers) + response.body


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


class RequestParser:
    """Parses the request head; bytes past it (the client's first frames) are in :attr:`leftover`.

    Feed bytes with :meth:`receive_data` until it returns the :class:`Request`. Raises
    :class:`InvalidRequest` (status 400) for what is not an HTTP/1.1 request head, including a
    head over ``MAX_HEADER_BYTES`` or with over ``MAX_HEADERS`` headers (see :mod:`websync.core.handshake`).
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.leftover = b""

    def receive_data(self, data: bytes) -> Request | None:
        self._buffer += data
        try:
            head = cut_head(self._buffer, "request")
        except InvalidHandshake as exc:
            raise InvalidRequest(400, str(exc)) from None
        if head is None:
            return None
        request_line, headers = head
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise InvalidRequest(400, f"not an HTTP request line: {request_line[:80]!r}")
        method, path, version = parts
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise InvalidRequest(400, f"WebSocket needs HTTP/1.1, not {version[:16]!r}")
        self.leftover = bytes(self._buffer)
        return Request(method, path, headers, version)


@dataclass(slots=True)
class Upgrade:
    """What :meth:`ServerHandshake.negotiate` agreed: the 101 response and the connection's settings."""

    response: Response
    subprotocol: str | None
    extensions: list[Extension] = field(default_factory=list)


class ServerHandshake:
    """Checks upgrade requests and negotiates them, the same way for every connection of a server.

    Args:
        subprotocols: the subprotocols the server speaks, most preferred first.
        extensions: the extensions the server accepts, e.g. ``[ServerPerMessageDeflate()]``.
        origins: the allowed ``Origin`` values; ``None`` allows any. Put ``None`` in the collection
            to allow requests without an Origin header (clients other than browsers).
    """

    def __init__(
        self,
        *,
        subprotocols: Sequence[str] = (),
        extensions: Sequence[ServerExtensionFactory] = (),
        origins: Collection[str | None] | None = None,
    ) -> None:
        self.subprotocols = list(subprotocols)
        self.extensions = list(extensions)
        self.origins = None if origins is None else frozenset(origins)

    def negotiate(self, request: Request) -> Upgrade:
        """Check ``request`` and build the 101 response.

        Raises :class:`InvalidRequest`: 400 for HTTP/1.0, 405 for a method other than GET, 426 for a request that
        does not ask for a WebSocket upgrade or asks for a version other than 13, 403 for an
        origin that is not allowed, 400 for a malformed key or header.
        """
        headers = request.headers
        if request.version != "HTTP/1.1":
            raise InvalidRequest(400, f"WebSocket needs HTTP/1.1, not {request.version}")
        if request.method != "GET":
            raise InvalidRequest(405, f"method {request.method[:16]!r} cannot upgrade", {"Allow": "GET"})
        try:
            upgrade = has_token(headers, "Upgrade", "websocket") and has_token(headers, "Connection", "upgrade")
        except InvalidHandshake as exc:
            raise InvalidRequest(400, str(exc)) from None
        if not upgrade:
            raise InvalidRequest(
                426,
                "this is a WebSocket endpoint: ask for an upgrade",
                {"Upgrade": "websocket", "Connection": "Upgrade"},
            )
        if headers.get_all("Sec-WebSocket-Version") != ["13"]:
            raise InvalidRequest(426, "unsupported Sec-WebSocket-Version: use 13", {"Sec-WebSocket-Version": "13"})
        key = self._check_key(headers)
        if self.origins is not None and headers.get("Origin") not in self.origins:
            raise InvalidRequest(403, f"origin {headers.get('Origin')!r} is not allowed")
        response_headers = Headers([("Upgrade", "websocket"), ("Connection", "Upgrade")])
        response_headers.add("Sec-WebSocket-Accept", accept_key(key))
        subprotocol = self._choose_subprotocol(headers)
        if subprotocol is not None:
            response_headers.add("Sec-WebSocket-Protocol", subprotocol)
        answers, extensions = self._negotiate_extensions(headers)
        if answers:
            response_headers.add("Sec-WebSocket-Extensions", format_extension_list(answers))
        return Upgrade(Response(101, _reason(101), response_headers), subprotocol, extensions)

    @staticmethod
    def _check_key(headers: Headers) -> str:
        keys = headers.get_all("Sec-WebSocket-Key")
        try:
            valid = len(keys) == 1 and len(base64.b64decode(keys[0], validate=True)) == 16
        except binascii.Error:
            valid = False
        if not valid:
            raise InvalidRequest(400, f"invalid Sec-WebSocket-Key {keys!r}")
        return keys[0]

    def _choose_subprotocol(self, headers: Headers) -> str | None:
        """The server's most preferred subprotocol among those offered, if any."""
        try:
            offered = [
                token for value in headers.get_all("Sec-WebSocket-Protocol") for token in parse_token_list(value)
            ]
        except InvalidHandshake as exc:
            raise InvalidRequest(400, str(exc)) from None
        return next((protocol for protocol in self.subprotocols if protocol in offered), None)

    def _negotiate_extensions(self, headers: Headers) -> tuple[list[tuple[str, ExtensionParams]], list[Extension]]:
        """Accept offers in the client's order; an offer a factory declines is skipped."""
        answers: list[tuple[str, ExtensionParams]] = []
        accepted: list[Extension] = []
        try:
            offers = [
                offer for value in headers.get_all("Sec-WebSocket-Extensions") for offer in parse_extension_list(value)
            ]
        except InvalidHandshake as exc:
            raise InvalidRequest(400, str(exc)) from None
        for name, params in offers:
            factory = next((f for f in self.extensions if f.name == name), None)
            if factory is None:
                continue
            try:
                answer, extension = factory.negotiate(params, accepted)
            except NegotiationError:
                continue
            answers.append((name, answer))
            accepted.append(extension)
        return answers, accepted
