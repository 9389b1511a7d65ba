"""Keepalive pings: when the next ping is due and when a missing pong means a dead peer."""

from __future__ import annotations

from ..core.entropy import random_bytes
from ..net.options import KeepaliveOptions

__all__ = ["Keepalive"]


class Keepalive:
    """Clock-free keepalive state of one connection; the caller passes ``time.monotonic()`` values
    and the connection's byte counters (``Statistics.bytes_in`` and ``bytes_out``).

    It never cries wolf: any byte received counts as proof of life (a large message still
    streaming in, frames arriving while a ping is out), and the pong's clock starts once the ping
    has been written, not when it was queued behind a large outgoing message. Both are learnt by
    comparing the counters at the pong's deadline, not at each read: the hot path pays nothing.
    A deadline so moved is one ``ping_timeout`` after the check that saw the progress, so a ping
    written during a check's window may wait up to twice ``ping_timeout`` for its pong.
    """

    next_ping: float | None
    pong_deadline: float | None
    deadline: float | None
    """When the keepalive next needs the caller (a ping due, a pong overdue); None: never. An
    attribute kept by every change, not computed: the worker's loop reads it on every turn."""

    def __init__(self, options: KeepaliveOptions, now: float) -> None:
        self.options = options
        self.restart(now)

    def restart(self, now: float) -> None:
        """Start over (a new connection): the first ping is due one ``ping_interval`` after ``now``."""
        interval = self.options.ping_interval
        self.next_ping = None if interval is None else now + interval
        self.pong_deadline = None
        self._payload = b""
        self._bytes_in = self._bytes_out = self._ping_written_at = 0
        self._update()

    def ping_due(self, now: float) -> bytes | None:
        """The payload of a ping to send now, or None when none is due; then call :meth:`ping_queued`."""
        if self.next_ping is None or now < self.next_ping:
            return None
        self.next_ping = now + self.options.ping_interval  # type: ignore[operator]
        if self.pong_deadline is None:
            self._payload = random_bytes(4)
        self._update()
        return self._payload

    def ping_queued(self, now: float, bytes_in: int, bytes_out: int, unsent: int) -> None:
        """The ping went to the connection, with ``unsent`` bytes still queued before and with it
        (0: written); the counters as they are now. Starts the pong's clock if none runs."""
        if self.pong_deadline is None and self.options.ping_timeout is not None:
            self.pong_deadline = now + self.options.ping_timeout
            self._bytes_in, self._bytes_out = bytes_in, bytes_out
            self._ping_written_at = bytes_out + unsent
            self._update()

    def pong_received(self, data: bytes) -> None:
        if data == self._payload and self.pong_deadline is not None:
            self.pong_deadline = None
            self._update()

    def expired(self, now: float, bytes_in: int, bytes_out: int) -> bool:
        """True when the pong of the last ping is overdue and nothing else showed the peer alive.

        At the deadline, bytes received since the last look, or bytes written while the ping was
        still queued behind them, move the deadline one ``ping_timeout`` on instead.
        """
        if self.pong_deadline is None or now < self.pong_deadline:
            return False
        if bytes_in == self._bytes_in and (bytes_out == self._bytes_out or self._bytes_out >= self._ping_written_at):
            return True
        self._bytes_in, self._bytes_out = bytes_in, bytes_out
        self.pong_deadline = now + self.options.ping_timeout  # type: ignore[operator]
        self._update()
        return False

    def _update(self) -> None:
        if self.pong_deadline is None or self.next_ping is None:
            self.deadline = self.next_ping if self.pong_deadline is None else self.pong_deadline
        else:
            self.deadline = min(self.next_ping, self.pong_deadline)
