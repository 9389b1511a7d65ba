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
        """Return at once: over HTTP/2 there is no TCP connection whose end to wait for (RFC 6455
        7.1.1 is about TIME_WAIT). Closing the socket ends the stream: END_STREAM once the server
        ended its side, else RST_STREAM(CANCEL); some servers (hypercorn) never end it."""
