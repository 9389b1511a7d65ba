"""The server's TLS handshake, done in the connection's own worker thread without blocking it.

The acceptor hands over plain TCP sockets; each connection's worker wraps its socket with the
application's :class:`ssl.SSLContext` (used as given) and runs the handshake here, waiting on the
socket and on the worker's wake-up socket together. A client that stalls mid-handshake costs its
own thread up to the handshake deadline, and holds up no other connection.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable

from ..core.errors import InvalidHandshake, OpenTimeout
from ..net.transport import Waitable, readable, readable_or_writable

__all__ = ["accept_tls"]


def accept_tls(
    sock: socket.socket,
    context: ssl.SSLContext,
    deadline: float | None,
    waker: Waitable,
    woken: Callable[[], None],
) -> ssl.SSLSocket:
    """The server side of TLS on the non-blocking ``sock``; the returned socket stays non-blocking.

    ``woken()`` is called whenever ``waker`` is readable (it raises to give up). Raises
    :class:`~websync.errors.OpenTimeout` past ``deadline``, :class:`~websync.errors.InvalidHandshake`
    when the client chose a protocol other than HTTP/1.1 by ALPN (the context offers h2: websync
    serves HTTP/1.1 only), ``ssl.SSLError`` or ``OSError`` when the handshake fails; the socket
    is closed then.
    """
    tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)  # takes over sock
    try:
        _handshake(tls, deadline, waker, woken)
    except BaseException:
        tls.close()
        raise
    return tls


def _handshake(tls: ssl.SSLSocket, deadline: float | None, waker: Waitable, woken: Callable[[], None]) -> None:
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            want_write = False
        except ssl.SSLWantWriteError:
            want_write = True
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise OpenTimeout("the client did not complete the TLS handshake in time")
        if want_write:
            ready = readable_or_writable([waker], tls, remaining)
        else:
            ready = readable([tls, waker], remaining)
        if waker in ready:
            woken()
    protocol = tls.selected_alpn_protocol()
    if protocol not in (None, "http/1.1"):
        raise InvalidHandshake(f"the client chose {protocol} by ALPN: offer only http/1.1 in the server's context")
