"""An accepted WebSocket stream's bytes, copied between its HTTP/2 stream and a socketpair.

The application (websync's :class:`~websync.net.connection.Connection` and worker) holds one end of a
``socket.socketpair()`` as if it were a TCP socket; the link's thread holds the other end in a
:class:`Tunnel`. The pair's buffers give backpressure both ways: a tunnel reads from its end only while
HTTP/2 flow control lets it send, and acknowledges received DATA (which lets the server send more)
only as the application's end takes it.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
from collections import deque

from .protocol import H2Protocol

__all__ = ["READ_SIZE", "Tunnel", "socket_pair"]

READ_SIZE = 64 * 1024
"""The most read at once from a socket (a tunnel's end, or the network)."""
PAIR_BUFFER = 256 * 1024
"""Socket buffer size of each stream's socketpair."""


def socket_pair() -> tuple[socket.socket, socket.socket]:
    """A non-blocking socketpair with :data:`PAIR_BUFFER` bytes of buffer each way."""
    pair = socket.socketpair()
    for end in pair:
        end.setblocking(False)
        end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PAIR_BUFFER)
        end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, PAIR_BUFFER)
    return pair


class Tunnel:
    """One accepted stream: the link's end of its socketpair and the DATA it has not taken yet.

    Used by the link's thread only; each method takes the :class:`H2Protocol` whose frames it queues.
    """

    __slots__ = ("stream_id", "sock", "events", "peer_ended", "reset", "_inbound", "_shut")

    def __init__(self, stream_id: int, sock: socket.socket) -> None:
        self.stream_id = stream_id
        self.sock = sock
        self.events = 0
        """What the link's selector watches ``sock`` for (0: not registered)."""
        self.peer_ended = False
        """The server ended its side (END_STREAM or RST_STREAM)."""
        self.reset = False
        """The stream was reset: what the application still writes is read and dropped."""
        self._inbound: deque[memoryview] = deque()
        self._shut = False

    def interest(self, protocol: H2Protocol, sending: bool) -> int:
        """The selector events to wait for; ``sending``: whether the link takes more data to send."""
        events = selectors.EVENT_WRITE if self._inbound else 0
        if self.reset or (sending and protocol.send_window(self.stream_id) > 0):
            events |= selectors.EVENT_READ
        return events

    def watch(self, selector: selectors.BaseSelector, events: int) -> None:
        """Register ``sock`` for ``events``, or modify them; a selector cannot watch a socket for no
        event, so 0 unregisters it until there is interest again."""
        if events == self.events:
            return
        if not events:
            selector.unregister(self.sock)
        elif self.events:
            selector.modify(self.sock, events, self)
        else:
            selector.register(self.sock, events, self)
        self.events = events

    def close(self, selector: selectors.BaseSelector) -> None:
        """Stop watching the link's end and close it: the application's end reads EOF."""
        self.watch(selector, 0)
        self.sock.close()

    def receive(self, data: bytes, protocol: H2Protocol) -> None:
        """DATA from the server, passed on as the application takes it."""
        self._inbound.append(memoryview(data))
        self.deliver(protocol)

    def end(self, protocol: H2Protocol, *, reset: bool) -> None:
        """The server ended the stream (``reset``: with RST_STREAM): EOF once its DATA is taken."""
        self.peer_ended = True
        self.reset = self.reset or reset
        self.deliver(protocol)

    def deliver(self, protocol: H2Protocol) -> None:
        """Copy received DATA into the socketpair as it takes it; after END_STREAM, shut it (EOF)."""
        while self._inbound:
            chunk = self._inbound[0]
            try:
                sent = self.sock.send(chunk)
            except BlockingIOError:
                return
            except OSError:  # the application closed its end
                self._discard(protocol)
                break
            protocol.consumed(self.stream_id, sent)
            if sent == len(chunk):
                self._inbound.popleft()
            else:
                self._inbound[0] = chunk[sent:]
        if self.peer_ended and not self._shut:
            self._shut = True
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)

    def forward(self, protocol: H2Protocol) -> bool:
        """Send what the application wrote, within the send window (dropped after a reset);
        False once the application closed its end."""
        size = READ_SIZE if self.reset else min(READ_SIZE, protocol.send_window(self.stream_id))
        if size <= 0:
            return True
        try:
            data = self.sock.recv(size)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if data and not self.reset:
            protocol.send_data(self.stream_id, data)
        return bool(data)

    def _discard(self, protocol: H2Protocol) -> None:
        """Drop the DATA nobody will take, acknowledging it so the server may send more."""
        protocol.consumed(self.stream_id, sum(len(chunk) for chunk in self._inbound))
        self._inbound.clear()
