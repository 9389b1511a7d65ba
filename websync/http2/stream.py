"""A WebSocket carried by an HTTP/2 stream, as websync's worker sees it."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from ..core.handshake import Accepted, Response
from ..net.connection import Connection

__all__ = ["Stream", "StreamConnection"]


@dataclass(frozen=True)
class Stream:
    """An accepted WebSocket stream: ``sock`` is the socket-like end the connection uses."""

    sock: socket.socket
    response: Response
    accepted: Accepted


class StreamConnection(Connection):
    """A :class:`~websync.net.connection.Connection` on an HTTP/2 stream's end of a socketpair."""

    def drain_until_eof(self, timeout: float | None) -> None:
        """After the close handshake, or after failing the connection, wait (bounded) for the
        server to end the stream unless the server answered our close (RFC 6455 7.1.1: the
        server closes first).

        Closing the socket ends the stream: END_STREAM once the server ended its side, else
        RST_STREAM(CANCEL). A reset right behind our last close frame (a reply to the server's,
        or the one failing the connection) can discard it: nghttpx drops the backend connection,
        and the bytes it still holds, as soon as the stream is reset, so its backend never sees
        that close. When the server answered our close it has it: return at once, as some
        servers (hypercorn) never end the stream.
        """
        protocol = self.protocol
        if protocol.close_received is None or protocol.closed_by_peer:
            super().drain_until_eof(timeout)
