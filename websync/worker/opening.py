"""Opening a WebSocket over HTTP/1.1 or HTTP/2: socket, TLS, upgrade, redirects, all within open_timeout."""

from __future__ import annotations

import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from ..core.errors import InvalidHandshake, InvalidStatus, OpenTimeout
from ..core.handshake import REDIRECT_STATUSES, Accepted, ClientHandshake, Response, ResponseParser
from ..core.protocol import Protocol, Role
from ..core.uri import WebSocketURI, parse_uri
from ..extensions.factories import extension_factories
from ..http2.session import OPEN_TIMED_OUT, open_stream
from ..http2.stream import StreamConnection
from ..net.connection import Connection
from ..net.deadline import Deadline
from ..net.options import ConnectOptions
from ..net.proxy import resolve_proxy
from ..net.statistics import Statistics
from ..net.tracing import Tracer
from ..net.transport import Waker, open_socket, send_all, wait_readable

__all__ = ["open_connection"]


CANCEL_CHECK_INTERVAL = 0.05
"""How often a cancellable handshake without a waker (or once its waker fired) looks whether it
was cancelled while waiting for the server."""


class OpenCancelled(InvalidHandshake):
    """The opener gave up on the handshake (a worker asked to stop)."""


@dataclass
class _Budget:
    """The time left for one opening attempt, and whether its opener gave up on it."""

    deadline: Deadline
    cancelled: Callable[[], bool] | None = None
    waker: Waker | None = None
    """Woken whenever ``cancelled`` may have turned True (the opener's mailbox got a message):
    waits watch it instead of waking every CANCEL_CHECK_INTERVAL to ask. A thousand workers
    connecting at once would otherwise wake 20,000 times a second, each a thread switch and a
    turn of the GIL, and delay every handshake (issue 24). Once it fired, the budget forgets it
    and looks in slices: a stop that lets queued frames go first ends at a deadline of its own,
    which wakes nobody."""

    def remaining(self) -> float | None:
        """Seconds left; raises OpenTimeout past the deadline and OpenCancelled once cancelled."""
        if self.cancelled is not None and self.cancelled():
            raise OpenCancelled("the opening handshake was cancelled")
        return self.deadline.left(OpenTimeout, OPEN_TIMED_OUT)

    def wait_slice(self) -> float | None:
        """How long one wait may last: the time left, in short slices when cancellable."""
        remaining = self.remaining()
        if self.cancelled is None or self.waker is not None:
            return remaining
        return CANCEL_CHECK_INTERVAL if remaining is None else min(remaining, CANCEL_CHECK_INTERVAL)

    def wait_readable(self, sock: socket.socket) -> bool:
        """Wait for data on ``sock`` for one slice at most (see :attr:`waker`); True once it has some."""
        waker = self.waker
        if wait_readable(sock, self.wait_slice(), waker):
            return True
        if waker is not None and waker.pending:  # woken: the caller's next remaining() asks cancelled()
            waker.drain()  # the opener's loop handles its mailbox once connected, whatever is drained now
            self.waker = None
        return False


def open_connection(
    url: str,
    options: ConnectOptions,
    tracer: Tracer,
    *,
    stats: Statistics | None = None,
    cancelled: Callable[[], bool] | None = None,
    waker: Waker | None = None,
) -> Connection:
    """Connect and upgrade, following redirects; the whole attempt is bounded by ``open_timeout``.

    ``stats`` counts the connection's traffic (a worker's counters span its reconnects);
    ``cancelled`` is polled while waiting for the server, and True ends the attempt: every
    CANCEL_CHECK_INTERVAL, or, given the ``waker`` that the opener's mailbox wakes, when it fires.
    Raises :class:`~websync.core.errors.InvalidHandshake` subclasses (``InvalidStatus`` for a refusal,
    ``OpenTimeout``), :class:`~websync.core.errors.TransportError`, and ``ValueError`` for options
    that do not go together (``unix_socket`` or ``sock`` with HTTP/2) or an unknown ``compression``.
    """
    budget = _Budget(Deadline(options.open_timeout), cancelled, None if cancelled is None else waker)
    uri = parse_uri(url)
    for _ in range(options.max_redirects + 1):
        tracer.event("connecting to %s", uri)
        try:
            return _upgrade(uri, options, tracer, budget, stats or Statistics())
        except InvalidStatus as refusal:
            location = refusal.headers.get("Location")
            if refusal.status not in REDIRECT_STATUSES or not options.follow_redirects or not location:
                raise
            if options.sock is not None:
                raise  # the caller's one socket is closed with the refusal
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


def _upgrade(
    uri: WebSocketURI, options: ConnectOptions, tracer: Tracer, budget: _Budget, stats: Statistics
) -> Connection:
    handshake = ClientHandshake(
        uri,
        headers=options.headers,
        origin=options.origin,
        subprotocols=options.subprotocols,
        extensions=extension_factories(options.compression, options.extensions, Role.CLIENT),
    )
    given = options.sock is not None or options.unix_socket is not None
    if given and (options.session is not None or options.http2):
        raise ValueError("unix_socket and sock are for HTTP/1.1: leave http2 and session unset")
    if options.session is not None or options.http2:
        opened = open_stream(uri, handshake, options, tracer, budget.remaining())
    else:
        proxy = None if given else resolve_proxy(options.proxy, uri)
        if proxy is not None:
            tracer.event("through proxy %s", proxy)
        opened = open_socket(
            uri,
            timeout=budget.remaining(),
            ssl_context=options.ssl,
            server_hostname=options.server_hostname,
            proxy=proxy,
            proxy_ssl=options.proxy_ssl,
            unix_socket=options.unix_socket,
            sock=options.sock,
        )
    if uri.secure and isinstance(opened, ssl.SSLSocket) and opened.selected_alpn_protocol() == "h2":
        opened.close()  # only a caller's context offers h2 here, and websync leaves it as it is
        raise InvalidHandshake(
            f"{uri.authority} chose HTTP/2 (h2) by ALPN, which the ssl context offers: connect with "
            "http2=True or 'auto', or offer only http/1.1 in the context"
        )
    connection_class: type[Connection]
    if isinstance(opened, socket.socket):
        connection_class, sock = Connection, opened
        response, accepted, leftover = _upgrade_http11(opened, handshake, tracer, budget)
    else:
        connection_class, sock = StreamConnection, opened.sock
        response, accepted, leftover = opened.response, opened.accepted, b""
    protocol = Protocol(Role.CLIENT, max_size=options.max_size, extensions=accepted.extensions)
    connection = connection_class(
        sock,
        protocol,
        uri,
        response,
        accepted.subprotocol,
        tracer,
        stats,
        write_timeout=options.write_timeout,
        early_data=leftover,
    )
    stats.connected_since = time.time()
    tracer.event("connected to %s (subprotocol %s, extensions %s)", uri, accepted.subprotocol, connection.extensions)
    return connection


def _upgrade_http11(
    sock: socket.socket, handshake: ClientHandshake, tracer: Tracer, budget: _Budget
) -> tuple[Response, Accepted, bytes]:
    """The HTTP/1.1 upgrade on ``sock``: the response, what it negotiated and bytes past it."""
    try:
        tracer.headers(f"GET {handshake.uri.resource}", handshake.request_headers.items())
        _send_request(sock, handshake.request_bytes(), budget)
        response, leftover = _read_response(sock, budget)
        tracer.headers(f"HTTP {response.status}", response.headers.items())
        return response, handshake.accept(response), leftover
    except BaseException:
        sock.close()
        raise


def _send_request(sock: socket.socket, request: bytes, budget: _Budget) -> None:
    """Write the upgrade request; a reset or a full socket past the deadline is a failed handshake."""
    try:
        send_all(sock, request, budget.remaining())
    except TimeoutError:
        raise OpenTimeout("timed out sending the opening handshake") from None
    except OSError as exc:
        raise InvalidHandshake(f"connection failed during the handshake: {exc}") from exc


def _read_response(sock: socket.socket, budget: _Budget) -> tuple[Response, bytes]:
    parser = ResponseParser()
    while True:
        if not budget.wait_readable(sock):
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
