"""Opening a WebSocket over HTTP/1.1 or HTTP/2: socket, TLS, upgrade, redirects, all within open_timeout."""

from __future__ import annotations

import socket
import ssl
import time
import urllib.parse

from .connection import Connection
from .errors import InvalidHandshake, InvalidStatus, OpenTimeout
from .extensions.base import ClientExtensionFactory
from .extensions.permessage_deflate import ClientPerMessageDeflate
from .handshake import REDIRECT_STATUSES, Accepted, ClientHandshake, Response, ResponseParser
from .http2.session import open_stream
from .http2.stream import StreamConnection
from .options import ConnectOptions
from .protocol import Protocol, Role
from .proxy import resolve_proxy
from .tracing import Tracer
from .transport import open_socket, send_all, wait_readable
from .uri import WebSocketURI, parse_uri

__all__ = ["open_connection"]


def extension_factories(options: ConnectOptions) -> list[ClientExtensionFactory]:
    """The extensions to offer for the ``compression`` option."""
    if options.compression is None:
        return []
    if options.compression == "deflate":
        return [ClientPerMessageDeflate()]
    raise ValueError(f"unsupported compression {options.compression!r}: use 'deflate' or None")


def open_connection(url: str, options: ConnectOptions, tracer: Tracer) -> Connection:
    """Connect and upgrade, following redirects; the whole attempt is bounded by ``open_timeout``.

    Raises :class:`~websync.errors.InvalidHandshake` subclasses (``InvalidStatus`` for a refusal,
    ``OpenTimeout``) and :class:`~websync.errors.TransportError`.
    """
    deadline = None if options.open_timeout is None else time.monotonic() + options.open_timeout
    uri = parse_uri(url)
    for _ in range(options.max_redirects + 1):
        tracer.event("connecting to %s", uri)
        try:
            return _upgrade(uri, options, tracer, deadline)
        except InvalidStatus as refusal:
            location = refusal.headers.get("Location")
            if refusal.status not in REDIRECT_STATUSES or not options.follow_redirects or not location:
                raise
            uri = _redirect_target(uri, location)
            tracer.event("redirected (%d) to %s", refusal.status, uri)
    raise InvalidHandshake(f"more than {options.max_redirects} redirects")


_HTTP_SCHEMES = {"http": "ws", "https": "wss"}


def _redirect_target(current: WebSocketURI, location: str) -> WebSocketURI:
    """Resolve a Location header against the current URL (http(s) schemes map to ws(s))."""
    target = urllib.parse.urlsplit(urllib.parse.urljoin(str(current), location))
    uri = parse_uri(target._replace(scheme=_HTTP_SCHEMES.get(target.scheme, target.scheme)).geturl())
    if current.secure and not uri.secure:
        raise InvalidHandshake(f"refusing a redirect from {current} to insecure {uri}")
    return uri


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise OpenTimeout("timed out during the opening handshake")
    return remaining


def _upgrade(uri: WebSocketURI, options: ConnectOptions, tracer: Tracer, deadline: float | None) -> Connection:
    handshake = ClientHandshake(
        uri,
        headers=options.headers,
        origin=options.origin,
        subprotocols=options.subprotocols,
        extensions=extension_factories(options),
    )
    if options.session is not None or options.http2:
        opened = open_stream(uri, handshake, options, tracer, _remaining(deadline))
    else:
        proxy = resolve_proxy(options.proxy, uri)
        if proxy is not None:
            tracer.event("through proxy %s", proxy)
        opened = open_socket(
            uri,
            timeout=_remaining(deadline),
            ssl_context=options.ssl,
            server_hostname=options.server_hostname,
            proxy=proxy,
            proxy_ssl=options.proxy_ssl,
        )
    connection_class: type[Connection]
    if isinstance(opened, socket.socket):
        connection_class, sock = Connection, opened
        response, accepted, leftover = _upgrade_http11(opened, handshake, tracer, deadline)
    else:
        connection_class, sock = StreamConnection, opened.sock
        response, accepted, leftover = opened.response, opened.accepted, b""
    protocol = Protocol(Role.CLIENT, max_size=options.max_size, extensions=accepted.extensions)
    connection = connection_class(sock, protocol, uri, response, accepted.subprotocol, tracer)
    connection.stats.connected_since = time.time()
    tracer.event(
        "connected to %s (subprotocol %s, extensions %s)", uri, accepted.subprotocol, connection.extensions
    )
    if leftover:
        connection.early_frames = connection.feed(leftover)
    return connection


def _upgrade_http11(
    sock: socket.socket, handshake: ClientHandshake, tracer: Tracer, deadline: float | None
) -> tuple[Response, Accepted, bytes]:
    """The HTTP/1.1 upgrade on ``sock``: the response, what it negotiated and bytes past it."""
    try:
        tracer.headers(f"GET {handshake.uri.resource}", handshake.request_headers.items())
        send_all(sock, handshake.request_bytes(), _remaining(deadline))
        response, leftover = _read_response(sock, deadline)
        tracer.headers(f"HTTP {response.status}", response.headers.items())
        return response, handshake.accept(response), leftover
    except BaseException:
        sock.close()
        raise


def _read_response(sock: socket.socket, deadline: float | None) -> tuple[Response, bytes]:
    parser = ResponseParser()
    while True:
        if not wait_readable(sock, _remaining(deadline)):
            continue
        try:
            data = sock.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError):
            continue
        except OSError as exc:
            raise InvalidHandshake(f"connection failed during the handshake: {exc}") from exc
        response = parser.receive_data(data) if data else parser.receive_eof()
        if response is not None:
            return response, parser.leftover
        if not data:
            raise InvalidHandshake("connection closed before the handshake response was complete")
