"""A WebSocket carried by an HTTP/2 stream, as websync's worker sees it."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from ..connection import Connection
from ..handshake import Accepted, Response

__all__ = ["Stream", "StreamConnection"]


@dataclass(frozen=True)
class Stream:
    """An accepted WebSocket stream: ``sock`` is the socket-like end the connection uses."""

    sock: socket.socket
    response: Response
    accepted: Accepted


class StreamConnection(Connection):
    """A :class:`~websync.connection.Connection` on an HTTP/2 stream's end of a socketpair."""

    def drain_until_eof(self, timeout: float | None) -> None:
        """After the close handshake, wait (bounded) for the server to end the stream when our close
        frame was the reply to the server's (RFC 6455 7.1.1: the server closes first).

        Closing the socket ends the stream: END_STREAM once the server ended its side, else
        RST_STREAM(CANCEL). A reset right behind our reply can discard it: nghttpx drops the
        backend connection, and the bytes it still holds, as soon as the stream is reset, so its
        backend never sees our close frame. When we closed first, the server's reply shows that
        it has our close frame: return at once, as some servers (hypercorn) never end the stream.
        """
        if self.protocol.closed_by_peer:
            super().drain_until_eof(timeout)
