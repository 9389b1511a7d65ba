"""Keepalive pings: when the next ping is due and when a missing pong means a dead peer."""

from __future__ import annotations

import os

from ..net.options import KeepaliveOptions

__all__ = ["Keepalive"]


class Keepalive:
    """Clock-free keepalive state of one connection; the caller passes ``time.monotonic()`` values."""

    next_ping: float | None
    pong_deadline: float | None

    def __init__(self, options: KeepaliveOptions, now: float) -> None:
        self.options = options
        self.restart(now)

    def restart(self, now: float) -> None:
        """Start over (a new connection): the first ping is due one ``ping_interval`` after ``now``."""
        interval = self.options.ping_interval
        self.next_ping = None if interval is None else now + interval
        self.pong_deadline = None
        self._payload = b""

    def ping_due(self, now: float) -> bytes | None:
        """The payload of a ping to send now, or None when none is due."""
        if self.next_ping is None or now < self.next_ping:
            return None
        self.next_ping = now + self.options.ping_interval  # type: ignore[operator]
        if self.pong_deadline is None:
            self._payload = os.urandom(4)
            if self.options.ping_timeout is not None:
                self.pong_deadline = now + self.options.ping_timeout
        return self._payload

    def pong_received(self, data: bytes) -> None:
        if data == self._payload:
            self.pong_deadline = None

    def expired(self, now: float) -> bool:
        """True when the pong of the last ping is overdue: the peer is unreachable."""
        return self.pong_deadline is not None and now >= self.pong_deadline

    def next_deadline(self) -> float | None:
        """When the keepalive next needs the caller (a ping due, a pong overdue); None: never."""
        if self.pong_deadline is None or self.next_ping is None:
            return self.next_ping if self.pong_deadline is None else self.pong_deadline
        return min(self.next_ping, self.pong_deadline)
