"""Opening WebSockets over HTTP/2: dialing by ALPN or prior knowledge, sessions that carry several
WebSockets on one connection, and the ``"auto"`` fallback to HTTP/1.1."""

from __future__ import annotations

import socket
import ssl
import threading
from types import TracebackType
from typing import Self

from ..core.errors import ExtendedConnectDisabled, InvalidHandshake, OpenTimeout
from ..core.handshake import ClientHandshake
from ..core.uri import WebSocketURI, parse_uri
from ..net.deadline import Deadline
from ..net.options import ConnectOptions
from ..net.proxy import ProxySetting, resolve_proxy
from ..net.tracing import Tracer
from ..net.transport import open_socket
from .handshake import accept, request_headers
from .link import Link
from .stream import Stream

__all__ = ["OPEN_TIMED_OUT", "Session", "connect_session", "open_stream"]

OPEN_TIMED_OUT = "timed out during the opening handshake"


def _dial(uri: WebSocketURI, alpn: tuple[str, ...], options: ConnectOptions, deadline: Deadline) -> socket.socket:
    return open_socket(
        uri,
        timeout=deadline.left(OpenTimeout, OPEN_TIMED_OUT),
        ssl_context=options.ssl,
        server_hostname=options.server_hostname,
        alpn=alpn if uri.secure else (),
        proxy=resolve_proxy(options.proxy, uri),
        proxy_ssl=options.proxy_ssl,
    )


def _start(
    uri: WebSocketURI,
    alpn: tuple[str, ...],
    options: ConnectOptions,
    deadline: Deadline,
    tracer: Tracer,
    *,
    close_when_idle: bool,
) -> Link | socket.socket:
    """Connect and start HTTP/2 on the socket: h2c by prior knowledge, or TLS where ALPN chose h2.

    Returns the socket itself when ALPN chose http/1.1 (offered by ``"auto"`` only).
    """
    sock = _dial(uri, alpn, options, deadline)
    # uri.secure: for ws:// through an https:// proxy, the TLS (and its ALPN) is the proxy's
    if uri.secure and isinstance(sock, ssl.SSLSocket) and sock.selected_alpn_protocol() != "h2":
        if "http/1.1" in alpn:
            tracer.event("the server chose %s by ALPN: using HTTP/1.1", sock.selected_alpn_protocol() or "nothing")
            return sock
        sock.close()
        hint = (
            " (websync uses the ssl context given as it is: to offer h2, call "
            "context.set_alpn_protocols(['h2', 'http/1.1']) on it)"
            if options.ssl is not None
            else ""
        )
        raise InvalidHandshake(f"{uri.authority} did not negotiate HTTP/2 (h2) by ALPN{hint}")
    return Link(sock, tracer, close_when_idle=close_when_idle).start()


def _disabled(uri: WebSocketURI) -> ExtendedConnectDisabled:
    return ExtendedConnectDisabled(f"{uri.authority} does not enable extended CONNECT (RFC 8441) over HTTP/2")


def _open_on(link: Link, handshake: ClientHandshake, tracer: Tracer, deadline: Deadline) -> Stream:
    headers = request_headers(handshake)
    tracer.headers(f"h2 CONNECT {handshake.uri.resource}", headers)
    answer = link.open(headers, deadline.left(OpenTimeout, OPEN_TIMED_OUT))
    tracer.headers(f"h2 answer {answer.status}", answer.headers.items())
    try:
        response, accepted = accept(handshake, answer.status, answer.headers, answer.body)
    except BaseException:
        if answer.sock is not None:
            answer.sock.close()
        raise
    assert answer.sock is not None
    return Stream(answer.sock, response, accepted)


def open_stream(
    uri: WebSocketURI, handshake: ClientHandshake, options: ConnectOptions, tracer: Tracer, timeout: float | None
) -> Stream | socket.socket:
    """Open ``handshake``'s WebSocket over HTTP/2 as ``options`` say (``session`` or ``http2``).

    Without a session, the HTTP/2 connection is opened for this WebSocket alone and closes with
    it. Returns a socket instead of a :class:`Stream` when ``http2="auto"`` settled on HTTP/1.1
    (the server chose it by ALPN, or it does not enable extended CONNECT): the caller upgrades it.
    """
    deadline = Deadline(timeout)
    if options.session is not None:
        return options.session._open_stream(uri, handshake, tracer, deadline.left(OpenTimeout, OPEN_TIMED_OUT))
    auto = options.http2 == "auto"
    if auto and not uri.secure:
        tracer.event("http2='auto' over ws:// has no ALPN to negotiate with: using HTTP/1.1")
        return _dial(uri, (), options, deadline)
    link = _start(uri, ("h2", "http/1.1") if auto else ("h2",), options, deadline, tracer, close_when_idle=True)
    if isinstance(link, socket.socket):
        return link
    try:
        if not link.wait_ready(deadline.left(OpenTimeout, OPEN_TIMED_OUT)):
            if not auto:
                raise _disabled(uri)
            if options.ssl is not None:  # it offers h2 and the server chose it: it would again
                raise ExtendedConnectDisabled(
                    f"{uri.authority} chose h2 by ALPN but does not enable extended CONNECT (RFC 8441), and "
                    "the ssl context given offers h2, so HTTP/1.1 cannot be negotiated with it (websync does "
                    "not modify it): offer only http/1.1 (or no ALPN) in it"
                )
            link.close()
            tracer.event("no extended CONNECT over HTTP/2: falling back to HTTP/1.1")
            return _dial(uri, ("http/1.1",), options, deadline)
        return _open_on(link, handshake, tracer, deadline)
    except BaseException:
        link.close()
        raise


class Session:
    """An HTTP/2 connection to one origin that carries several WebSockets (RFC 8441).

    Open WebSockets on it with ``websync.connect(url, session=session)`` or
    ``websync.start(handler, session=session)``; each is served by its own worker while one
    thread owns the shared connection. Closing one WebSocket leaves the others running. When the
    connection is lost or the server sends GOAWAY, the next WebSocket opened dials a new one.
    Create it with :func:`connect_session`; close it with :meth:`close` or a ``with`` block.

    ``options`` says how to dial: its ``ssl``, ``server_hostname``, ``proxy``, ``proxy_ssl``,
    ``open_timeout`` and ``trace``; its other fields are each WebSocket's own, given to
    ``websync.connect``. ``Session(url, options)`` itself does not dial: :meth:`connect` or its
    first WebSocket does.
    """

    def __init__(self, url: str, options: ConnectOptions | None = None) -> None:
        uri = parse_uri(url)
        self.origin = f"{uri.scheme}://{uri.authority}"
        """``ws://host:port`` or ``wss://host:port``: the URLs this session can open."""
        self.options = options or ConnectOptions()
        self._uri = uri
        self.tracer = Tracer(f"h2 session {self.origin}", enabled=self.options.trace)
        self._lock = threading.Lock()
        self._link: Link | None = None
        self._closed = False

    def _current_link(self, deadline: Deadline) -> Link:
        with self._lock:
            if self._closed:
                raise InvalidHandshake(f"the HTTP/2 session to {self.origin} is closed")
            if self._link is None or not self._link.usable:
                self._link = self._new_link(deadline)
            return self._link

    def _new_link(self, deadline: Deadline) -> Link:
        self.tracer.event("dialing %s over HTTP/2", self.origin)
        link = _start(self._uri, ("h2",), self.options, deadline, self.tracer, close_when_idle=False)
        assert isinstance(link, Link)
        try:
            if not link.wait_ready(deadline.left(OpenTimeout, OPEN_TIMED_OUT)):
                raise _disabled(self._uri)
        except BaseException:
            link.close()
            raise
        return link

    def connect(self) -> Session:
        """Open the HTTP/2 connection now (else the first WebSocket opens it); returns the session."""
        self._current_link(Deadline(self.options.open_timeout))
        return self

    def _open_stream(
        self, uri: WebSocketURI, handshake: ClientHandshake, tracer: Tracer, timeout: float | None
    ) -> Stream:
        """Open one WebSocket stream on the connection (for :func:`open_stream`)."""
        if f"{uri.scheme}://{uri.authority}" != self.origin:
            raise InvalidHandshake(f"{uri} is not on the HTTP/2 session's origin {self.origin}")
        deadline = Deadline(timeout)
        link = self._current_link(deadline)
        stream = _open_on(link, handshake, tracer, deadline)
        tracer.event("WebSocket %s opened on the HTTP/2 session to %s", uri.resource, self.origin)
        return stream

    @property
    def streams(self) -> int:
        """WebSocket streams open (or opening) on the current connection."""
        link = self._link
        return 0 if link is None else link.stream_count

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Send GOAWAY and close the connection; WebSockets still open on it are cut (code 1006).

        Close the WebSockets first for a clean end. Idempotent.
        """
        with self._lock:
            self._closed = True
            link, self._link = self._link, None
        if link is not None:
            link.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<websync.http2.Session {self.origin} streams={self.streams}{' closed' if self._closed else ''}>"


def connect_session(
    url: str,
    *,
    ssl: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    open_timeout: float | None = 10.0,
    trace: bool = False,
    proxy: ProxySetting = True,
    proxy_ssl: ssl.SSLContext | None = None,
) -> Session:
    """Open an HTTP/2 connection to ``url``'s origin for several WebSockets (RFC 8441).

    ``wss://`` negotiates h2 by ALPN, ``ws://`` speaks h2c by prior knowledge. Raises
    :class:`~websync.core.errors.ExtendedConnectDisabled` when the server does not enable extended
    CONNECT, :class:`~websync.core.errors.InvalidHandshake` when it does not speak HTTP/2, and
    :class:`~websync.core.errors.TransportError` or :class:`~websync.core.errors.OpenTimeout`. ``proxy``
    and ``proxy_ssl`` are those of :func:`websync.connect` (the environment's proxy by default).
    """
    options = ConnectOptions(
        ssl=ssl,
        server_hostname=server_hostname,
        open_timeout=open_timeout,
        trace=trace,
        proxy=proxy,
        proxy_ssl=proxy_ssl,
    )
    return Session(url, options).connect()
