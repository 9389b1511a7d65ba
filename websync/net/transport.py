"""Sockets: TCP connections with timeouts, TLS with certifi's CA bundle, non-blocking I/O helpers."""

from __future__ import annotations

import errno
import ipaddress
import math
import os
import select
import socket
import ssl
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import certifi

from ..core.errors import OpenTimeout, ProxyError, TransportError
from ..core.uri import WebSocketURI
from .proxy import Proxy, establish_tunnel, relay
from .tls import SerializedTLS, SocketIO

__all__ = [
    "default_ssl_context",
    "open_socket",
    "send_all",
    "send_some",
    "wait_readable",
    "readable_waiter",
    "wait_writable",
    "shut_down",
    "readable",
    "readable_or_writable",
    "Poller",
    "Waker",
    "Descriptor",
    "Waitable",
    "WOULD_BLOCK",
    "describe_socket_error",
]


class Descriptor:
    """A file descriptor as ``poll()`` and selectors watch it (by ``fileno()``): a :class:`Waker`'s
    reader. About 50 bytes, where an ``io.FileIO`` takes 250 (a thousand workers hold one each)."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd


Waitable = socket.socket | Descriptor
"""What the waits below watch: sockets, and a :class:`Waker`'s reader."""

WOULD_BLOCK: tuple[type[OSError], ...] = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
"""What a call on a non-blocking socket (plain or TLS) raises when it would have to wait."""


def default_ssl_context(alpn: Sequence[str] = ()) -> ssl.SSLContext:
    """A new client context: TLS 1.2 or newer, certificates checked against certifi's bundle, SNI,
    offering ``alpn`` by ALPN. websync builds one per connection when the caller gives none, so
    that the protocols it offers are set on a context nobody else holds."""
    context = ssl.create_default_context(cafile=certifi.where())
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def open_socket(
    uri: WebSocketURI,
    *,
    timeout: float | None,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    alpn: Sequence[str] = (),
    proxy: Proxy | None = None,
    proxy_ssl: ssl.SSLContext | None = None,
    unix_socket: str | None = None,
    sock: socket.socket | None = None,
) -> socket.socket:
    """Connect to ``uri``'s host and port (IPv4 or IPv6), with TLS for wss://.

    ``unix_socket`` (a path) connects to that Unix domain socket instead, and ``sock`` uses a
    socket the caller connected (which the connection then owns and closes); either way TLS is
    still applied for wss://, checked against ``server_hostname`` or ``uri``'s host, and no
    ``proxy`` is used.

    ``ssl_context`` and ``proxy_ssl`` are the caller's and are used as given, never modified
    (they may be shared by threads and other libraries): a context's settings cannot be copied,
    and ALPN can be set only on a context, so a caller's context offers what the caller set on it
    (``set_alpn_protocols``), and ``alpn`` is ignored then. Without ``ssl_context``, a fresh
    default context offers ``alpn`` (the protocol the caller picks reads the outcome from
    ``selected_alpn_protocol()``). With ``proxy``, the connection goes to the proxy (TLS to it
    with ``proxy_ssl`` or a default context for ``https://``), which opens a tunnel to the host;
    TLS to the host then runs inside the tunnel. The socket is returned in non-blocking mode.
    Raises :class:`OpenTimeout` past ``timeout``, :class:`TransportError` for refused
    connections, DNS and TLS failures, and :class:`ProxyError` when the proxy refuses.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    where = f"{uri.host}:{uri.port}"
    if sock is not None or unix_socket is not None:
        proxy = None
        sock, where = _given_socket(sock, unix_socket, timeout)
    else:
        sock = _connect_tcp(uri, proxy, deadline)
    try:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if proxy is not None or uri.secure:
            sock.settimeout(timeout)  # the tunnel and TLS handshakes block, each up to the deadline
        if proxy is not None:
            sock = _tunnel(sock, proxy, proxy_ssl, uri, deadline)
        if uri.secure:
            context = ssl_context or default_ssl_context(alpn)
            sock = _start_tls(sock, context, server_hostname or uri.host, deadline, where)
        if sock.gettimeout() != 0.0:
            sock.setblocking(False)
        return sock
    except BaseException:
        sock.close()
        raise


def _connect_tcp(uri: WebSocketURI, proxy: Proxy | None, deadline: float | None) -> socket.socket:
    """A non-blocking TCP connection to ``uri``'s host and port, or to ``proxy``, by ``deadline``.

    It lets go of the GIL only where it waits (among many busy threads, each time costs the
    connecting thread a turn behind them all): an IP address needs no name lookup, the socket is
    non-blocking from its creation, and the connect waits in one ``poll``. The addresses of a
    name are tried in turn, as ``socket.create_connection`` does.
    """
    host, port, where = (uri.host, uri.port, f"{uri.host}:{uri.port}")
    if proxy is not None:
        host, port, where = proxy.host, proxy.port, f"proxy {proxy}"
    try:
        addresses = _addresses(host, port)
    except OSError as exc:
        raise TransportError(exc.errno, f"cannot connect to {where}: {exc.strerror or exc}") from exc
    error = OSError(errno.EADDRNOTAVAIL, "no address")
    for family, address in addresses:
        try:
            return _connect_to(family, address, deadline)
        except TimeoutError:
            raise OpenTimeout(f"timed out connecting to {where}") from None
        except OSError as exc:
            error = exc
    raise TransportError(error.errno, f"cannot connect to {where}: {error.strerror or error}") from error


def _addresses(host: str, port: int) -> list[tuple[int, tuple[Any, ...]]]:
    """Where to connect for ``host``: the address itself when it is one, else the resolver's answers."""
    try:
        version = ipaddress.ip_address(host).version
    except ValueError:  # a name (or a scoped IPv6 address, which the resolver maps to its interface)
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [(family, address) for family, _, _, _, address in answers]
    return [(socket.AF_INET if version == 4 else socket.AF_INET6, (host, port))]


def _connect_to(family: int, address: tuple[Any, ...], deadline: float | None) -> socket.socket:
    """A non-blocking TCP socket connected to ``address``; TimeoutError past ``deadline``."""
    sock = socket.socket(family, socket.SOCK_STREAM | _NONBLOCKING)
    try:
        if not _NONBLOCKING:
            sock.setblocking(False)
        code = sock.connect_ex(address)
        if code in (errno.EINPROGRESS, errno.EWOULDBLOCK):
            if not wait_writable(sock, None if deadline is None else deadline - time.monotonic()):
                raise TimeoutError(errno.ETIMEDOUT, "connect timed out")
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, os.strerror(code))
    except BaseException:
        sock.close()
        raise
    return sock


_NONBLOCKING: int = getattr(socket, "SOCK_NONBLOCK", 0)
"""The socket type flag that makes a socket non-blocking as it is created (Linux); 0 elsewhere."""


def _given_socket(
    sock: socket.socket | None, unix_socket: str | None, timeout: float | None
) -> tuple[socket.socket, str]:
    """The caller's connected socket, or a connection to the Unix socket ``unix_socket``, and
    how errors name it."""
    if sock is not None:
        if sock.fileno() == -1:
            raise TransportError(
                errno.EBADF, "the socket given as sock= is closed (a worker needs a new one for each connection)"
            )
        return sock, "the socket given as sock="
    assert unix_socket is not None
    where = f"unix socket {unix_socket}"
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        unix.settimeout(timeout)
        unix.connect(unix_socket)
    except BaseException as exc:
        unix.close()
        if isinstance(exc, TimeoutError):
            raise OpenTimeout(f"timed out connecting to {where}") from None
        if isinstance(exc, OSError):
            raise TransportError(exc.errno, f"cannot connect to {where}: {exc.strerror or exc}") from exc
        raise
    return unix, where


def _tunnel(
    sock: socket.socket, proxy: Proxy, context: ssl.SSLContext | None, uri: WebSocketURI, deadline: float | None
) -> socket.socket:
    """The tunnel to ``uri`` through ``proxy`` on ``sock``; a relayed socket when TLS must nest."""
    where = f"proxy {proxy}"
    if proxy.scheme == "https":
        sock = _start_tls(sock, context or default_ssl_context(), proxy.host, deadline, where)
        if isinstance(sock, ssl.SSLSocket) and sock.selected_alpn_protocol() not in (None, "http/1.1"):
            protocol = sock.selected_alpn_protocol()
            sock.close()
            raise ProxyError(
                f"{where} chose {protocol} by ALPN, offered by the proxy_ssl context; a CONNECT tunnel "
                "needs HTTP/1.1: offer only http/1.1 (or no ALPN) in proxy_ssl"
            )
    try:
        establish_tunnel(sock, proxy, uri.host, uri.port, deadline)
    except BaseException as exc:
        sock.close()
        if isinstance(exc, OSError) and not isinstance(exc, OpenTimeout):
            raise TransportError(exc.errno, f"connection to {where} failed: {exc.strerror or exc}") from exc
        raise
    return relay(sock) if isinstance(sock, ssl.SSLSocket) and uri.secure else sock


def _start_tls(
    sock: socket.socket,
    context: ssl.SSLContext,
    hostname: str,
    deadline: float | None,
    where: str,
) -> ssl.SSLSocket:
    """TLS on ``sock`` with ``context`` as it is (its ALPN protocols included)."""
    if deadline is not None:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
    try:
        return context.wrap_socket(sock, server_hostname=hostname)
    except TimeoutError:
        raise OpenTimeout(f"timed out in the TLS handshake with {where}") from None
    except ssl.SSLCertVerificationError as exc:
        raise TransportError(
            exc.errno, f"TLS certificate verification of {where} failed: {exc.verify_message}"
        ) from exc
    except ssl.SSLError as exc:
        raise TransportError(exc.errno, f"TLS handshake with {where} failed: {exc.reason or exc}") from exc
    except OSError as exc:
        raise TransportError(exc.errno, f"TLS handshake with {where} failed: {exc}") from exc


def wait_readable(sock: socket.socket, timeout: float | None, waker: Waker | None = None) -> bool:
    """Wait until ``sock`` has data (TLS: including bytes already decrypted and buffered); True
    when it has. With ``waker``, the wait also ends (False) once the waker is readable, which
    stays so until the caller drains it."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    return sock in readable([sock] if waker is None else [sock, waker.reader], timeout)


def readable_waiter(sock: SocketIO) -> Callable[[float | None], bool]:
    """:func:`wait_readable` for ``sock`` (a socket, or a connection's ``SerializedTLS``), keeping
    its poll object from call to call: for the one thread that reads a socket (a poll object is
    not for concurrent use)."""
    return _ReadableWaiter(sock)


class _ReadableWaiter:
    """What :func:`readable_waiter` returns: about 70 bytes where a closure over the same three
    values takes 270 (every connection holds one). The poll object is made at the first wait: a
    worker's connection, which the worker's own loop polls, never needs one (about 450 bytes)."""

    __slots__ = ("_sock", "_pending", "_poller")

    def __init__(self, sock: SocketIO) -> None:
        self._sock = sock
        self._pending = sock.pending if isinstance(sock, (ssl.SSLSocket, SerializedTLS)) else None
        """TLS: how many decrypted bytes wait where a poll cannot see them."""
        self._poller: select.poll | None = None

    def __call__(self, timeout: float | None) -> bool:
        pending = self._pending
        if pending is not None and pending():
            return True
        poller = self._poller
        if poller is None:
            poller = select.poll()
            poller.register(self._sock, _READABLE)  # may raise (a closed socket): then again next time
            self._poller = poller
        return bool(poller.poll(_milliseconds(timeout)))


def readable(socks: Sequence[Waitable], timeout: float | None) -> list[Waitable]:
    """Wait until one of ``socks`` has data, EOF or an error; return those that do (none on timeout)."""
    return _poll([(sock, _READABLE) for sock in socks], timeout)


def readable_or_writable(readers: Sequence[Waitable], writer: socket.socket, timeout: float | None) -> list[Waitable]:
    """Like :func:`readable`, but ``writer`` also counts as ready once it has room to write."""
    events: list[tuple[Waitable, int]] = [(sock, _READABLE | (_WRITABLE if sock is writer else 0)) for sock in readers]
    if writer not in readers:
        events.append((writer, _WRITABLE))
    return _poll(events, timeout)


class Poller:
    """Waits on a fixed set of sockets with one poll object kept from call to call: for a thread
    that waits on the same sockets again and again (:func:`readable` builds one per call, which
    costs more than the wait itself when data is there). Not for concurrent use."""

    __slots__ = ("_poller", "_by_fd", "_writer")

    def __init__(self, socks: Sequence[Waitable]) -> None:
        self._poller = select.poll()
        self._by_fd = {sock.fileno(): sock for sock in socks}
        for fd in self._by_fd:
            self._poller.register(fd, _READABLE)
        self._writer: int | None = None

    def wait(self, timeout: float | None, writer: socket.socket | None = None) -> list[Waitable]:
        """The sockets that have data, EOF or an error, and ``writer`` (one of the sockets) once
        it has room to write; none on timeout."""
        fd = None if writer is None else writer.fileno()
        if fd != self._writer:
            if self._writer is not None:
                self._poller.modify(self._writer, _READABLE)
            if fd is not None:
                self._poller.modify(fd, _READABLE | _WRITABLE)
            self._writer = fd
        return [self._by_fd[ready] for ready, _ in self._poller.poll(_milliseconds(timeout))]


class Waker:
    """Wakes a thread that waits in ``poll``: it waits on :attr:`reader` too, and any thread
    calls :meth:`wake`. A wake-up while one is pending writes nothing (no system call).

    One eventfd on Linux (one file descriptor, no socket buffers); a pipe elsewhere, made by
    :meth:`open` in the thread that waits: creating a descriptor lets go of the GIL, and a
    thread that starts workers among a thousand busy ones gets it back only behind them all.
    A wake-up before :meth:`open` is kept for it.

    :meth:`wake` and :meth:`close` share a lock: ``os.write`` lets go of the GIL after it took
    the descriptor's number, and a close in that gap would free the number for the next socket
    or file opened, which the late write would then hit. A forked child gets new locks: one held
    at the fork by another thread would never be released there.
    """

    __slots__ = ("reader", "_write_fd", "_token", "_lock", "pending", "__weakref__")

    def __init__(self) -> None:
        self.reader = Descriptor(-1)
        self._write_fd = -1
        self._token = _EVENTFD_ONE if _EVENTFD else b"\0"
        self._lock = threading.Lock()
        _WAKERS.add(self)
        self.pending = False
        """True from a wake-up until the woken thread's :meth:`drain`: meanwhile, more wake-ups
        need no byte of their own."""

    def open(self) -> None:
        """Make the descriptors (in the thread that waits, before it waits); a wake-up that came
        before makes :attr:`reader` readable at once."""
        if _EVENTFD:
            read_fd = write_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:
            read_fd, write_fd = os.pipe()
            os.set_blocking(read_fd, False)
            os.set_blocking(write_fd, False)
        self.reader.fd = read_fd
        self._write_fd = write_fd
        if self.pending:  # woken before: its write found no descriptor
            os.write(write_fd, self._token)

    def wake(self) -> None:
        """Make :attr:`reader` readable, if it is not already waiting to be drained."""
        if self.pending:
            return  # the woken thread has yet to drain, and looks at what it is woken for after that
        self.pending = True
        with self._lock:
            if self._write_fd < 0:
                return  # not open yet (open() writes it), or closed
            try:
                os.write(self._write_fd, self._token)
            except BlockingIOError:
                pass  # full: a wake-up is pending anyway

    def drain(self) -> None:
        """Empty :attr:`reader`; the woken thread calls this before it looks at what it was woken
        for, so that a wake-up after that look writes a byte again."""
        try:
            os.read(self.reader.fd, 4096)  # an eventfd's counter in one read; the pipe's byte (one per wake-up)
        except OSError:
            pass  # empty (EAGAIN), or closed
        self.pending = False

    def close(self) -> None:
        """Close the descriptors; later wake-ups write nothing (-1 is no descriptor)."""
        with self._lock:  # after a write in progress: its descriptor is still this waker's
            read_fd, write_fd = self.reader.fd, self._write_fd
            if read_fd < 0:
                return  # closed already
            self.reader.fd = self._write_fd = -1
            self.pending = True
        os.close(read_fd)
        if write_fd != read_fd:
            os.close(write_fd)


_WAKERS: weakref.WeakSet[Waker] = weakref.WeakSet()


def _unlock_wakers_in_child() -> None:
    for waker in list(_WAKERS):
        waker._lock = threading.Lock()


os.register_at_fork(after_in_child=_unlock_wakers_in_child)

_EVENTFD = hasattr(os, "eventfd")
_EVENTFD_ONE = (1).to_bytes(8, sys.byteorder)
"""What an eventfd write adds to its counter: a native 64-bit integer."""


def shut_down(sock: socket.socket) -> None:
    """End ``sock``'s connection both ways, which wakes the threads that wait on it; errors (not
    connected, closed) are ignored. A TLS socket keeps its TLS layer: ``SSLSocket.shutdown``
    would drop it, and the records still buffered would then be read as plain bytes."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


def wait_writable(sock: socket.socket, timeout: float | None) -> bool:
    """Wait until ``sock`` has room to write (or an error); False on timeout."""
    return bool(_poll([(sock, _WRITABLE)], timeout))


_READABLE = select.POLLIN | select.POLLPRI
_WRITABLE = select.POLLOUT


def _poll(events: Sequence[tuple[Waitable, int]], timeout: float | None) -> list[Waitable]:
    """The sockets that are ready for their events (hang-ups and errors count as ready).

    ``poll()`` rather than ``select()``: select fails on descriptors above 1023 (FD_SETSIZE),
    which a server with a few hundred connections reaches.
    """
    poller = select.poll()
    try:
        for sock, mask in events:
            poller.register(sock, mask)
    except ValueError:  # closed by another thread: ready, and its next call fails (EBADF)
        return [sock for sock, _ in events if sock.fileno() < 0]
    ready = {fd for fd, _ in poller.poll(_milliseconds(timeout))}
    return [sock for sock, _ in events if sock.fileno() in ready]


def _milliseconds(timeout: float | None) -> int | None:
    """A timeout in seconds as ``poll()`` takes it: whole milliseconds, rounded up; None: forever."""
    return None if timeout is None else max(math.ceil(timeout * 1000), 0)


def send_some(sock: socket.socket, data: bytes | memoryview) -> int:
    """Write what a non-blocking socket takes now; 0 when it has no room."""
    try:
        return sock.send(data)
    except WOULD_BLOCK:
        return 0


def send_all(sock: socket.socket, data: bytes | memoryview, timeout: float | None = None) -> None:
    """Write all of ``data`` to a non-blocking socket, waiting for room; TimeoutError past ``timeout``."""
    sent = send_some(sock, data) if data else 0
    if sent == len(data):
        return  # the common case: the socket took it all at once
    view = memoryview(data)[sent:]
    deadline = None if timeout is None else time.monotonic() + timeout
    while view:
        sent = send_some(sock, view)
        if sent:
            view = view[sent:]
            continue
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise TimeoutError("timed out sending data")
        wait_writable(sock, remaining)


def describe_socket_error(error: OSError) -> str:
    """A socket error in words: "connection reset by peer" rather than "[Errno 104] ..."."""
    if isinstance(error, ssl.SSLError):
        return f"TLS error: {error.reason or error}"
    if isinstance(error, ConnectionResetError):
        return "connection reset by peer"
    if isinstance(error, BrokenPipeError):
        return "broken pipe (the peer closed the connection)"
    return error.strerror or str(error)
