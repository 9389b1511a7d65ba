"""A TLS socket whose calls into OpenSSL take turns, for a connection read and written by two threads."""

from __future__ import annotations

import socket
import ssl
import threading

__all__ = ["SerializedTLS", "SocketIO", "serialized"]


class SerializedTLS:
    """The reads, writes and ``pending()`` of one non-blocking ``ssl.SSLSocket``, one at a time.

    OpenSSL forbids two threads inside one SSL object at once, and a connection's reader
    (``SSL_read``) and a sender in another thread (``SSL_write``) would be: CPython releases the
    GIL around both. A peer's TLS 1.3 KeyUpdate then makes the read change the keys the write is
    using, and the process's heap is corrupted (``free(): corrupted unsorted chunks``) or the
    stream garbled (tests/net/test_tls_threads.py). The socket never blocks, so the lock is held
    only for the duration of one call.
    """

    __slots__ = ("_sock", "_lock")

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self._sock = sock
        self._lock = threading.Lock()

    def fileno(self) -> int:
        return self._sock.fileno()

    def send(self, data: bytes | memoryview, flags: int = 0) -> int:
        with self._lock:
            return self._sock.send(data, flags)

    def recv(self, size: int, flags: int = 0) -> bytes:
        with self._lock:
            return self._sock.recv(size, flags)

    def recv_into(self, buffer: memoryview, size: int = 0, flags: int = 0) -> int:
        with self._lock:
            return self._sock.recv_into(buffer, size, flags)

    def pending(self) -> int:
        """Decrypted bytes that wait in the TLS layer (a poll of the socket cannot see them)."""
        with self._lock:
            return self._sock.pending()


SocketIO = socket.socket | SerializedTLS
"""What a connection reads and writes through: the socket itself, or its TLS calls in turns."""


def serialized(sock: socket.socket) -> SocketIO:
    """``sock`` wrapped in :class:`SerializedTLS` when it is a TLS socket, else ``sock`` itself
    (the kernel's socket calls are safe from any thread)."""
    return SerializedTLS(sock) if isinstance(sock, ssl.SSLSocket) else sock
